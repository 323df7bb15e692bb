"""Photo → SynthTalk avatar: the parametric head that looks most like the person in a photo.

The bundled checkpoint only knows SynthTalk heads (``starcaster.data.heads``), so a real photo
animated directly comes out as a smear in the photo's colours. Instead the photo is *read*
into the parameters of a SynthTalk head, whose canonical portrait the checkpoint animates
well; the avatar's identity embedding is what downloads and the API return.

Two ways in, one head out (``fit_avatar``):

* **A photo** (``fit_photo``): dlib's 68 landmarks (``face_landmarks``) give the face's
  proportions (eye spacing and size, nose, brows, jaw and chin, face width) and the regions
  whose colours are read (cheeks → skin, lips, irises, chin → beard, above the brows → hair,
  below the chin → clothes, around the head → backdrop; a glasses score from the frame edges
  between and around the eyes). Then **analysis by synthesis**: the photo is warped into the
  SynthTalk portrait frame (eyes and mouth onto the renderer's), the hair style, hairline and
  volume are the ones whose rendered hair silhouette overlaps the photo's hair best, and each
  colour is divided by the shading the renderer gives that part of *this* head, so the
  avatar's portrait shows the photo's colours rather than darker versions of them.
* **A SynthTalk-like portrait** (``fit_portrait``; also the fallback for a tight square portrait
  in which no real face is found): pure analysis by synthesis in the portrait frame. A render
  is exactly linear in the six colours for a fixed geometry, so three renders give every
  colour in closed form (least squares); hair style, glasses and beard are chosen by
  rendering each option, and the geometry by a short coordinate descent on the pixel error.

This is the one inference-time module that imports from ``starcaster/data/``: the pure-NumPy
head model (``heads``), renderer (``render``) and frame state (``state``) — the avatar *is* a
SynthTalk head and needs the renderer to be drawn (docs/architecture.md, dependency rules).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from PIL import Image

from .data.heads import HAIR_STYLES, HeadParams
from .data.render import RenderConfig, camera_frames, render, render_parts
from .data.state import FrameState
from .errors import InputError
from .face_landmarks import FaceLandmarks, find_landmarks

FIT_SIZE = 64  # the portrait frame the fit works in (the bundled checkpoint's frame size)
PORTRAIT_SIZE = 128  # the avatar portrait shown and downloaded (the size of examples/portraits)
_FIT = RenderConfig(size=FIT_SIZE, supersample=1)  # search renders (~5 ms each)
_BASIS_LEVEL = 0.5  # albedo of the basis renders: shading ≤ 1.2 keeps them below 1 (no clipping)
_EYE_Y, _MOUTH_Y = 0.12, -0.44  # head-local heights of the eye centres and the mouth (render.py)
COLOUR_FIELDS = ("skin", "lips", "hair", "eye_colour", "shirt", "background")

# The ranges ``heads.sample_head`` draws from (tests/test_avatar.py checks they still hold).
RANGES: dict[str, tuple[float, float]] = {
    "skull_w": (0.72, 0.86), "skull_h": (0.95, 1.08), "skull_d": (0.85, 0.96),
    "jaw_width": (0.62, 0.9), "jaw_length": (0.85, 1.15), "cheek": (0.16, 0.26),
    "hair_volume": (0.04, 0.2), "hairline": (0.35, 0.6), "eye_spacing": (0.25, 0.34),
    "eye_size": (0.1, 0.135), "nose_length": (0.2, 0.34), "nose_width": (0.08, 0.14),
    "nose_depth": (0.1, 0.2), "brow_thickness": (0.025, 0.06), "brow_height": (0.17, 0.25),
    "ear_size": (0.85, 1.2), "beard": (0.0, 1.0),
}  # fmt: skip
GEOMETRY = tuple(k for k in RANGES if k != "beard")  # coordinate-descent order of the portrait fit


def mid(name: str) -> float:
    low, high = RANGES[name]
    return (low + high) / 2


def average_head(**changes) -> HeadParams:
    """The middle of every range: the fit's starting point (short hair, no glasses, no beard)."""
    grey = (0.5, 0.5, 0.5)
    values = {k: mid(k) for k in RANGES if not k.startswith("skull")}
    values.update(beard=0.0, glasses=False, hair_style=0, seed=-1)
    values.update({name: grey for name in COLOUR_FIELDS})
    head = HeadParams(skull=(mid("skull_w"), mid("skull_h"), mid("skull_d")), **values)
    return replace(head, **changes)


def get(head: HeadParams, name: str) -> float:
    """A scalar parameter by its ``RANGES`` name (``skull_w/h/d`` are the skull's three radii)."""
    if name.startswith("skull_"):
        return head.skull["whd".index(name[-1])]
    return float(getattr(head, name))


def with_value(head: HeadParams, name: str, value: float) -> HeadParams:
    low, high = RANGES[name]
    value = float(np.clip(value, low, high))
    if name.startswith("skull_"):
        skull = list(head.skull)
        skull["whd".index(name[-1])] = value
        return replace(head, skull=tuple(skull))
    return replace(head, **{name: value})


# ---------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------


@dataclass
class AvatarFit:
    """A fitted avatar: its head, canonical portrait, what was read, and how it was found.

    ``portrait`` is uint8 ``[PORTRAIT_SIZE, PORTRAIT_SIZE, 3]``; ``source`` is ``"photo"``
    (landmarks + analysis by synthesis) or ``"portrait"`` (the SynthTalk-frame fit).
    """

    head: HeadParams
    portrait: np.ndarray
    source: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    box: tuple[int, int, int, int] | None = None  # the face used, in the photo's pixels
    domain_score: float | None = None  # of the photo (``avatar_domain``): 1 = SynthTalk-like, 0 = a photo
    embedding: np.ndarray | None = None  # (512,) the avatar's identity, set by the pipeline

    @property
    def read(self) -> dict[str, str]:
        return describe_head(self.head)

    @property
    def description(self) -> str:
        """One line, e.g. ``hair: dark brown, short · glasses: no · skin: light · …``."""
        return " · ".join(f"{k}: {v}" for k, v in self.read.items())

    def parameters(self) -> dict:
        """The head as JSON-ready values (``HeadParams`` fields; hair style also by name)."""
        values = asdict(self.head)
        values["hair_style_name"] = HAIR_STYLES[self.head.hair_style]
        return values


def fit_avatar(image: Image.Image, *, min_face: int = 64) -> AvatarFit:
    """The avatar of ``image`` (RGB): from its face's landmarks, or — for a tight square portrait
    in which no real face is found, such as a SynthTalk render — from the portrait frame itself."""
    started = time.perf_counter()
    if min(image.size) < 8:  # the identity front end's wording for the same case
        raise InputError(
            f"The image is only {image.width}×{image.height} px. Use a photo with a face of at least {min_face} px."
        )
    try:
        face = find_landmarks(image, min_face=min_face)
    except InputError as exc:
        if not _tight_portrait(image) or not str(exc).startswith("No face"):
            raise
        head = fit_portrait(np.asarray(image.resize((FIT_SIZE, FIT_SIZE), Image.Resampling.LANCZOS)))
        note = "No real face found; read the picture as a SynthTalk-framed portrait."
        return AvatarFit(head, render_portrait(head), "portrait", [note], time.perf_counter() - started)
    head = fit_photo(image, face)
    return AvatarFit(head, render_portrait(head), "photo", face.notes, time.perf_counter() - started, face.box)


def avatar_for(image: Image.Image, mode: str = "auto") -> AvatarFit | None:
    """The avatar to animate instead of ``image`` (``"auto"``: only for an out-of-domain photo, domain
    score below ``avatar_domain.THRESHOLD``; ``"always"``; ``"never"``: None), its domain score set."""
    from .avatar_domain import THRESHOLD, domain_score

    if mode == "never":
        return None
    score = domain_score(image)
    if mode == "auto" and score >= THRESHOLD:
        return None
    fit = fit_avatar(image)
    fit.domain_score = score
    return fit


def _tight_portrait(image: Image.Image) -> bool:
    width, height = image.size
    return abs(width - height) <= 0.05 * max(width, height) and max(width, height) <= 512


def head_from_parameters(values: dict) -> HeadParams:
    """``AvatarFit.parameters()`` (possibly edited) → a head, clipped to the renderer's ranges."""
    fields = {k: values[k] for k in HeadParams.__dataclass_fields__}
    for name in COLOUR_FIELDS:
        fields[name] = _tuple(np.clip(np.asarray(fields[name], np.float64), 0.0, 1.0))
    fields["skull"] = tuple(float(v) for v in fields["skull"])
    fields["hair_style"] = int(np.clip(int(fields["hair_style"]), 0, len(HAIR_STYLES) - 1))
    fields["glasses"] = bool(fields["glasses"])
    head = HeadParams(**fields)
    for name in RANGES:
        head = with_value(head, name, get(head, name))
    return head


def render_portrait(head: HeadParams, size: int = PORTRAIT_SIZE) -> np.ndarray:
    """The avatar's canonical portrait (frontal, neutral): uint8 ``[size, size, 3]``."""
    return render(head, FrameState.neutral(1), RenderConfig(size=size))[0]


def render_views(head: HeadParams, azimuths: tuple[float, ...], size: int = PORTRAIT_SIZE) -> np.ndarray:
    """The avatar seen from several azimuths (degrees): uint8 ``[V, size, size, 3]``."""
    return render(head, FrameState.neutral(len(azimuths), azimuth=np.asarray(azimuths)), RenderConfig(size=size))


# ---------------------------------------------------------------------------------------
# Linear colour model: three renders give every colour of a fixed geometry
# ---------------------------------------------------------------------------------------


def colour_basis(head: HeadParams, config: RenderConfig = _FIT) -> tuple[np.ndarray, np.ndarray]:
    """``(constant [P, 3], basis [6, P])`` with ``render(head) ≈ constant + Σ_m basis[m] ⊗ colour_m``.

    Shading is a scalar per pixel and every painted colour is a fixed multiple (or blend) of one
    of the six colours (``COLOUR_FIELDS``), so each render channel isolates one colour.
    """
    black = replace(head, **{name: (0.0, 0.0, 0.0) for name in COLOUR_FIELDS})
    h = _BASIS_LEVEL
    a = replace(black, skin=(h, 0.0, 0.0), lips=(0.0, h, 0.0), hair=(0.0, 0.0, h))
    b = replace(black, eye_colour=(h, 0.0, 0.0), shirt=(0.0, h, 0.0), background=(0.0, 0.0, h))
    constant, first, second = (_render_float(x, config) for x in (black, a, b))
    basis = [(first[:, c] - constant[:, c]) / h for c in range(3)] + [
        (second[:, c] - constant[:, c]) / h for c in range(3)
    ]
    return constant, np.stack(basis)


def solve_colours(head: HeadParams, target: np.ndarray, config: RenderConfig = _FIT) -> HeadParams:
    """Least-squares colours of ``head``'s geometry for ``target`` (float ``[P, 3]`` in [0, 1])."""
    constant, basis = colour_basis(head, config)
    used = np.abs(basis).sum(1) > 1e-6  # a colour no pixel shows (e.g. hidden irises) keeps its value
    colours = np.stack([np.asarray(getattr(head, name), np.float64) for name in COLOUR_FIELDS])  # [6, 3]
    if used.any():
        solution, *_ = np.linalg.lstsq(basis[used].T, target - constant, rcond=None)  # [k, 3]
        colours[used] = np.clip(solution, 0.0, 1.0)
    return replace(head, **{name: _tuple(colours[i]) for i, name in enumerate(COLOUR_FIELDS)})


def _render_float(head: HeadParams, config: RenderConfig = _FIT) -> np.ndarray:
    """One frontal neutral render as float ``[P, 3]`` in [0, 1]."""
    return render(head, FrameState.neutral(1), config)[0].reshape(-1, 3).astype(np.float64) / 255.0


def _tuple(values) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))


# ---------------------------------------------------------------------------------------
# The SynthTalk-frame fit (analysis by synthesis on pixels)
# ---------------------------------------------------------------------------------------


def fit_portrait(image: np.ndarray, sweeps: int = 2) -> HeadParams:
    """Fit every parameter to a frontal SynthTalk-framed portrait, uint8 ``[64, 64, 3]``.

    Colours in closed form (``solve_colours``); hair style, glasses and beard by trying each;
    geometry by coordinate descent with halving steps. ~130 renders of 64² (~0.7 s at 1 thread).
    """
    target = image.reshape(-1, 3).astype(np.float64) / 255.0
    head = solve_colours(average_head(), target)
    head = _best(target, [solve_colours(replace(head, hair_style=s), target) for s in range(len(HAIR_STYLES))])
    head = _best(target, [solve_colours(replace(head, glasses=g), target) for g in (False, True)])
    head = _best(target, [replace(head, beard=b) for b in (0.0, 0.55, 0.75, 0.95)])
    step = 0.25
    for _ in range(sweeps):
        head = _descend(head, target, step)
        head = solve_colours(head, target)
        step /= 2
    return head


def _loss(head: HeadParams, target: np.ndarray) -> float:
    return float(((_render_float(head) - target) ** 2).mean())


def _best(target: np.ndarray, candidates: list[HeadParams]) -> HeadParams:
    return min(candidates, key=lambda h: _loss(h, target))


def _descend(head: HeadParams, target: np.ndarray, step: float) -> HeadParams:
    """One sweep over ``GEOMETRY``: try ± ``step`` of each range and keep what lowers the error."""
    best = _loss(head, target)
    for name in GEOMETRY:
        low, high = RANGES[name]
        for sign in (1.0, -1.0):
            trial = with_value(head, name, get(head, name) + sign * step * (high - low))
            loss = _loss(trial, target)
            if loss < best:
                head, best = trial, loss
                break
    return head


# ---------------------------------------------------------------------------------------
# The photo fit
# ---------------------------------------------------------------------------------------

# Face ratios (in eye distances) mapped linearly onto a parameter's range: (ratio at the low end,
# ratio at the high end). Rough spans of adult faces, set from the offline photos (docs/avatar.md).
_RATIO_SPANS: dict[str, tuple[float, float]] = {
    "eye_spacing": (0.40, 0.48),  # eye distance / face width (landmarks 0–16)
    "skull_w": (2.1, 2.5),  # face width / eye distance
    "jaw_width": (0.60, 0.70),  # jaw width at landmarks 5–11 / face width
    "jaw_length": (0.5, 0.9),  # mouth → chin / eye distance
    "cheek": (0.86, 0.96),  # face width at landmarks 3–13 / face width
    "eye_size": (0.35, 0.42),  # eye width (corner to corner) / eye distance
    "nose_length": (0.68, 0.92),  # bridge top (27) → nose tip (33) / eye distance
    "nose_width": (0.38, 0.58),  # nostril width (31–35) / eye distance
    "brow_height": (0.25, 0.47),  # eye centre → brow (above) / eye distance
    "skull_h": (1.9, 2.3),  # brows → chin / eye distance
}


def face_ratios(face: FaceLandmarks) -> dict[str, float]:
    """The face's proportions that map onto head parameters (keys of ``_RATIO_SPANS``)."""
    p, iod = face.points, face.eye_distance
    dist = lambda a, b: float(np.linalg.norm(p[a] - p[b]))  # noqa: E731
    width = dist(0, 16)
    eyes_y = (face.left_eye[1] + face.right_eye[1]) / 2
    brows_y = p[[18, 19, 20, 23, 24, 25], 1].mean()
    return {
        "eye_spacing": iod / width,
        "skull_w": width / iod,
        "jaw_width": dist(5, 11) / width,
        "jaw_length": (p[8, 1] - face.mouth[1]) / iod,
        "cheek": dist(3, 13) / width,
        "eye_size": (dist(36, 39) + dist(42, 45)) / 2 / iod,
        "nose_length": dist(27, 33) / iod,
        "nose_width": dist(31, 35) / iod,
        "brow_height": (eyes_y - brows_y) / iod,
        "skull_h": (p[8, 1] - brows_y) / iod,
    }


def geometry_from_ratios(ratios: dict[str, float]) -> dict[str, float]:
    """Each ratio's position in its span → the same position in the parameter's range."""
    values = {}
    for name, (r_low, r_high) in _RATIO_SPANS.items():
        t = float(np.clip((ratios[name] - r_low) / (r_high - r_low), 0.0, 1.0))
        low, high = RANGES[name]
        values[name] = low + t * (high - low)
    return values


def fit_photo(image: Image.Image, face: FaceLandmarks) -> HeadParams:
    """Read a photo into a head: geometry from the landmarks, colours, brows, glasses, beard and
    hair from the face's regions, then colours through the renderer's shading (analysis by synthesis)."""
    from . import face_regions

    pixels = np.asarray(image, np.float64) / 255.0  # [H, W, 3]
    observed = face_regions.read_colours(pixels, face)
    head = average_head()
    for name, value in geometry_from_ratios(face_ratios(face)).items():
        head = with_value(head, name, value)
    brow = face_regions.brow_thickness(pixels, face, observed["skin"])
    head = with_value(head, "brow_thickness", mid("brow_thickness") + (brow - 0.11) * 0.35)
    head = replace(head, glasses=face_regions.glasses_score(pixels, face) > face_regions.GLASSES_THRESHOLD)
    head = replace(head, beard=face_regions.beard_amount(observed))
    head = hair_from_layout(head, face_regions.hair_layout(pixels, face, observed))
    return separate_hair(shade_matched(head, observed))


def separate_hair(head: HeadParams, min_delta: float = 30.0) -> HeadParams:
    """Darken hair that is too close to the skin (blond on fair skin) until it differs by ``min_delta``
    (CIE76), as a cartoonist would: at 64² a fair-skinned blond otherwise reads as bald."""
    from skimage.color import lab2rgb, rgb2lab

    skin, hair = (rgb2lab(np.array([[getattr(head, k)]], np.float64))[0, 0] for k in ("skin", "hair"))
    for _ in range(12):
        if np.linalg.norm(hair - skin) >= min_delta:
            break
        hair = hair * [0.92, 1.03, 1.04]  # darker, a little more saturated, same hue
    return replace(head, hair=_tuple(np.clip(lab2rgb(hair[None, None])[0, 0], 0.0, 1.0)))


def hair_from_layout(head: HeadParams, layout) -> HeadParams:
    """Style, hairline and volume from where the photo's hair is (``face_regions.HairLayout``, IOD units).

    SynthTalk fringes sit low (hairline 0.35–0.6 head units, just above the brows), so a
    forehead of 0.9–1.7 IOD maps onto that range; above 1.9 IOD (or no hair on top) is
    "receding"; hair beside the jaw is "long"; a crown more than 2.85 IOD above the eyes is
    "volume". A bun cannot be seen from the front and is never chosen.
    """
    if layout.long:
        style = "long"
    elif layout.hairline > 1.9 or layout.coverage < 0.15:
        style = "receding"
    elif layout.top > 2.85:
        style = "volume"
    else:
        style = "short"
    head = replace(head, hair_style=HAIR_STYLES.index(style))
    hairline = 0.35 + (layout.hairline - 0.9) / 0.8 * 0.25
    volume = 0.04 + (layout.top - 2.0) / 1.2 * 0.16
    if style == "long":  # SynthTalk's long shell hides under the skull unless it is thick and low in front
        hairline, volume = min(hairline, 0.42), max(volume, 0.16)
    return with_value(with_value(head, "hairline", hairline), "hair_volume", volume)


def canonical_points(head: HeadParams, config: RenderConfig = _FIT) -> np.ndarray:
    """Where ``head``'s right eye, left eye and mouth centre land in its portrait: ``[3, 2]`` pixels (x, y)."""
    w, h, d = head.skull
    eye_z = d * np.sqrt(max(1e-3, 1 - (head.eye_spacing / w) ** 2 - ((_EYE_Y - 0.1) / h) ** 2)) + 0.45 * head.eye_size
    points = np.array([[-head.eye_spacing, _EYE_Y, eye_z], [head.eye_spacing, _EYE_Y, eye_z], [0.0, _MOUTH_Y, 0.84]])
    return project(points, config)


def project(points: np.ndarray, config: RenderConfig) -> np.ndarray:
    """Frontal-camera pixel coordinates (x right, y down) of head-local points ``[N, 3]`` (neutral pose)."""
    position, forward, right, up = (v[0].astype(np.float64) for v in camera_frames(np.zeros(1), np.zeros(1), config))
    rays = points - position
    depth = rays @ forward
    tan = np.tan(np.radians(config.fov_deg) / 2)
    u, v = (rays @ right) / depth / tan, (rays @ up) / depth / tan
    return np.stack([(u + 1) / 2 * config.size - 0.5, (1 - v) / 2 * config.size - 0.5], -1)


def fit_hair(head: HeadParams, mask: np.ndarray) -> HeadParams:
    """Hair style, hairline and volume whose rendered hair overlaps the photo's hair ``mask`` ``[64, 64]`` best."""

    def overlap(candidate: HeadParams) -> float:
        drawn = np.isin(render_parts(candidate, FrameState.neutral(1), _FIT)[0], (9, 10))  # hair shell, bun
        drawn[round(FIT_SIZE * 0.72) :] = False  # as hair_mask: the rows above the chin
        union = (drawn | mask).sum()
        return float((drawn & mask).sum() / union) if union else 1.0

    head = max((replace(head, hair_style=s) for s in range(len(HAIR_STYLES))), key=overlap)
    for name in ("hairline", "hair_volume"):
        low, high = RANGES[name]
        head = max((with_value(head, name, v) for v in np.linspace(low, high, 5)), key=overlap)
    return head


def shade_matched(head: HeadParams, observed: dict[str, np.ndarray]) -> HeadParams:
    """Colours that make ``head``'s render show the ``observed`` colours: each divided by the median
    shading the renderer gives that colour's pixels on this geometry (from ``colour_basis``, which is
    the render itself, split by colour), over the same region it was read from (cheeks for skin)."""
    _, basis = colour_basis(head)
    right_eye, left_eye, mouth = canonical_points(head)
    rows, cols = np.mgrid[:FIT_SIZE, :FIT_SIZE]
    offset = np.abs(cols - mouth[0])
    cheeks = (
        (rows > right_eye[1] + 2) & (rows < mouth[1] - 1) & (offset > 3) & (offset < left_eye[0] - mouth[0] + 3)
    ).ravel()
    colours = {}
    for index, name in enumerate(COLOUR_FIELDS):
        region = basis[index] > 0.05
        if name == "skin" and (region & cheeks).sum() > 8:
            region &= cheeks  # the photo's skin colour was read on the cheeks: compare like with like
        shading = basis[index][region]
        gain = float(np.median(shading)) if shading.size else 1.0
        colours[name] = _tuple(np.clip(observed[name] / np.clip(gain, 0.85, 1.25), 0.0, 1.0))
    return replace(head, **colours)


# ---------------------------------------------------------------------------------------
# Words for what was read
# ---------------------------------------------------------------------------------------

_HAIR_NAMES = {
    "black": (0.06, 0.05, 0.05), "dark brown": (0.22, 0.14, 0.08), "brown": (0.42, 0.27, 0.13),
    "blond": (0.80, 0.66, 0.38), "red": (0.58, 0.22, 0.09), "grey": (0.62, 0.62, 0.62), "white": (0.9, 0.9, 0.88),
    "green": (0.2, 0.6, 0.2), "blue": (0.2, 0.3, 0.75), "purple": (0.5, 0.2, 0.6), "pink": (0.9, 0.5, 0.7),
}  # fmt: skip
_SKIN_NAMES = {
    "very light": (0.96, 0.80, 0.69), "light": (0.91, 0.72, 0.58), "medium": (0.80, 0.60, 0.45),
    "tan": (0.66, 0.46, 0.32), "brown": (0.47, 0.32, 0.22), "deep": (0.33, 0.22, 0.15),
}  # fmt: skip
_EYE_NAMES = {
    "brown": (0.30, 0.18, 0.08), "blue": (0.20, 0.40, 0.70), "green": (0.25, 0.50, 0.30),
    "grey": (0.45, 0.45, 0.50), "dark brown": (0.15, 0.10, 0.05),
}  # fmt: skip
_CLOTHES_NAMES = {
    "black": (0.08, 0.08, 0.08), "white": (0.92, 0.92, 0.92), "grey": (0.5, 0.5, 0.5), "navy": (0.1, 0.14, 0.35),
    "blue": (0.2, 0.4, 0.85), "red": (0.8, 0.15, 0.15), "green": (0.2, 0.6, 0.25), "yellow": (0.9, 0.85, 0.2),
    "orange": (0.95, 0.55, 0.15), "purple": (0.55, 0.2, 0.65), "pink": (0.95, 0.6, 0.75), "brown": (0.45, 0.3, 0.15),
    "teal": (0.1, 0.55, 0.55), "olive": (0.5, 0.5, 0.2), "beige": (0.85, 0.78, 0.62),
}  # fmt: skip


def colour_name(colour, names: dict[str, tuple[float, float, float]]) -> str:
    """The nearest named colour in CIELAB."""
    from skimage.color import rgb2lab

    lab = rgb2lab(np.asarray(colour, np.float64).reshape(1, 1, 3))[0, 0]
    table = rgb2lab(np.array(list(names.values()), np.float64)[None])[0]
    return list(names)[int(np.argmin(((table - lab) ** 2).sum(-1)))]


def hex_colour(colour) -> str:
    return "#" + "".join(f"{round(float(np.clip(c, 0, 1)) * 255):02x}" for c in colour)


def describe_head(head: HeadParams) -> dict[str, str]:
    """What the avatar shows, in words (the app's "what was read" line)."""
    beard = "none" if head.beard < 0.3 else "light" if head.beard < 0.7 else "full"
    return {
        "hair": f"{colour_name(head.hair, _HAIR_NAMES)}, {HAIR_STYLES[head.hair_style]}",
        "glasses": "yes" if head.glasses else "no",
        "skin": f"{colour_name(head.skin, _SKIN_NAMES)} ({hex_colour(head.skin)})",
        "eyes": colour_name(head.eye_colour, _EYE_NAMES),
        "beard": beard,
        "clothes": colour_name(head.shirt, _CLOTHES_NAMES),
    }
