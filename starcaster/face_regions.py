"""Reading a photo's face regions from its 68 landmarks: colours, brows, glasses, beard, hair mask.

Everything is measured in a *face frame*: the photo warped so that the eye line is horizontal,
the eye midpoint is the origin and one inter-ocular distance (IOD) is ``UNIT`` pixels. Every
region is then a fixed box in IOD units (eyes at v = 0, u = ±0.5; mouth near v = 1; chin near
v = 1.7), whatever the photo's size, tilt or framing. Colours are float RGB in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .face_landmarks import FaceLandmarks

UNIT = 32  # face-frame pixels per inter-ocular distance
_U_RANGE, _V_RANGE = (-3.0, 3.0), (-3.2, 4.2)  # the face frame's extent in IOD (u right, v down)
GLASSES_THRESHOLD = 30.0  # glasses_score above this: glasses (photos without: 6–18, with: 45; docs/avatar.md)
_DEFAULT_SHIRT = np.array([0.3, 0.35, 0.45])
_DEFAULT_BACKGROUND = np.array([0.55, 0.55, 0.6])


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping ``src`` [N, 2] onto ``dst``: ``[2, 3]``."""
    sc, dc = src.mean(0), dst.mean(0)
    s, d = src - sc, dst - dc
    a = (s * d).sum() / (s**2).sum()
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / (s**2).sum()
    rot = np.array([[a, -b], [b, a]])
    return np.concatenate([rot, (dc - rot @ sc)[:, None]], 1)


def _warp(pixels: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.warpAffine(
        pixels.astype(np.float32), matrix, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )


class FaceFrame:
    """The photo resampled into the face frame, with the landmarks and a validity mask there."""

    def __init__(self, pixels: np.ndarray, face: FaceLandmarks):
        width = round((_U_RANGE[1] - _U_RANGE[0]) * UNIT)
        height = round((_V_RANGE[1] - _V_RANGE[0]) * UNIT)
        eyes = np.stack([face.right_eye, face.left_eye])
        target = np.array([[-0.5, 0.0], [0.5, 0.0]]) * UNIT - [_U_RANGE[0] * UNIT, _V_RANGE[0] * UNIT]
        self.matrix = _similarity(eyes, target)
        self.image = _warp(pixels, self.matrix, (width, height))  # [h, w, 3]
        inside = _warp(np.ones(pixels.shape[:2], np.float32), self.matrix, (width, height))
        border = _warp(_border_mask(pixels.shape[:2]), self.matrix, (width, height))
        self.valid = (inside > 0.5) & (border < 0.5)  # replicated edge pixels are not the photo
        self.points = face.points @ self.matrix[:, :2].T + self.matrix[:, 2]

    def box(self, u: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
        """Valid pixels ``[K, 3]`` of the box u × v (IOD units)."""
        cols = [round((x - _U_RANGE[0]) * UNIT) for x in u]
        rows = [round((y - _V_RANGE[0]) * UNIT) for y in v]
        region, valid = (
            self.image[rows[0] : rows[1], cols[0] : cols[1]],
            self.valid[rows[0] : rows[1], cols[0] : cols[1]],
        )
        return region[valid]

    def polygon(self, indices) -> np.ndarray:
        """Valid pixels ``[K, 3]`` inside the polygon through the given landmarks."""
        import cv2

        mask = np.zeros(self.valid.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(self.points[list(indices)]).astype(np.int32)], 1)
        return self.image[(mask > 0) & self.valid]


def _border_mask(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.float32)
    mask[:1], mask[-1:], mask[:, :1], mask[:, -1:] = 1, 1, 1, 1
    return mask


def _median(pixels: np.ndarray, default: np.ndarray | None = None) -> np.ndarray | None:
    return np.median(pixels, 0) if len(pixels) >= 4 else default


def _lab(colours: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    colours = np.asarray(colours, np.float64)
    return rgb2lab(np.clip(colours, 0, 1).reshape(-1, 1, 3))[:, 0]


def _delta(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """CIE76 colour difference of every pixel ``[K, 3]`` from one colour."""
    return np.linalg.norm(_lab(pixels) - _lab(colour[None]), axis=-1)


def read_colours(pixels: np.ndarray, face: FaceLandmarks) -> dict[str, np.ndarray]:
    """The photo's colours by region: skin, lips, eye_colour, hair, chin, shirt, background (RGB [0, 1])."""
    frame = FaceFrame(pixels, face)
    cheeks = np.concatenate([frame.box((-0.95, -0.4), (0.3, 0.75)), frame.box((0.4, 0.95), (0.3, 0.75))])
    skin = _median(_middle(cheeks, 0.2, 0.9), np.array([0.8, 0.6, 0.45]))
    lips = _median(frame.polygon(range(48, 60)), skin * [0.85, 0.55, 0.55])
    eyes = np.concatenate([frame.polygon(range(36, 42)), frame.polygon(range(42, 48))])
    iris = _median(_middle(eyes, 0.05, 0.45), np.array([0.3, 0.18, 0.08]))
    background = _median(
        np.concatenate([frame.box((-3.0, -2.1), (-2.5, 0.5)), frame.box((2.1, 3.0), (-2.5, 0.5)), frame.box((-3.0, 3.0), (-3.2, -2.7))]),
        _DEFAULT_BACKGROUND,
    )  # fmt: skip
    hair = _hair_colour(frame, skin, background)
    chin = _median(np.concatenate([frame.box((-0.35, 0.35), (1.35, 1.6)), frame.box((-0.2, 0.2), (0.72, 0.82))]), skin)
    shirt = _median(frame.box((-1.0, 1.0), (2.9, 4.2)), _DEFAULT_SHIRT)
    return dict(skin=skin, lips=lips, eye_colour=iris, hair=hair, chin=chin, shirt=shirt, background=background)


def _middle(pixels: np.ndarray, low: float, high: float) -> np.ndarray:
    """The pixels between two luminance quantiles (drops highlights, shadows, pupils, sclera)."""
    if len(pixels) < 8:
        return pixels
    luma = pixels @ [0.299, 0.587, 0.114]
    lo, hi = np.quantile(luma, [low, high])
    return pixels[(luma >= lo) & (luma <= hi)]


def _hair_colour(frame: FaceFrame, skin: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The median of what is neither skin nor backdrop above the forehead and beside the temples."""
    band = np.concatenate(
        [
            frame.box((-1.0, 1.0), (-2.3, -0.8)),
            frame.box((-1.35, -1.0), (-1.3, 0.2)),
            frame.box((1.0, 1.35), (-1.3, 0.2)),
        ]
    )
    if len(band) == 0:
        return np.array([0.25, 0.15, 0.08])
    keep = (_delta(band, skin) > 18) & (_delta(band, background) > 18)
    if keep.mean() < 0.08:  # nearly no hair: a shaved or receding head, grey-ish
        return _median(band[_delta(band, skin) > 10], np.array([0.62, 0.62, 0.62]))
    return np.median(band[keep], 0)


def brow_thickness(pixels: np.ndarray, face: FaceLandmarks, skin: np.ndarray) -> float:
    """Brow height in IOD: dark pixels per column in a band around the brow landmarks."""
    frame = FaceFrame(pixels, face)
    columns = []
    for brow in (range(17, 22), range(22, 27)):
        pts = frame.points[list(brow)]
        for x in range(round(pts[1, 0]), round(pts[3, 0]) + 1):
            y = np.interp(x, pts[:, 0], pts[:, 1])
            top, bottom = round(y - 0.25 * UNIT), round(y + 0.25 * UNIT)
            strip = frame.image[max(0, top) : bottom, x]
            luma = strip @ [0.299, 0.587, 0.114]
            columns.append(float((luma < 0.75 * float(skin @ [0.299, 0.587, 0.114])).sum()) / UNIT)
    return float(np.median(columns)) if columns else 0.11


def glasses_score(pixels: np.ndarray, face: FaceLandmarks) -> float:
    """How sharply dark lines cross the places glasses frames run: the bridge between the eyes
    (a horizontal bar) and under each eye (the lower rims). (Beside the eyes the outer rims
    compete with the edges of hair and backdrop, which scored as high on the photos.)

    Each place's intensity profile across the expected line (averaged along it, so only lines
    that continue count — not wrinkles or pores) is compared with its own moving average; the
    score is the deepest dip there, in per cent of the local brightness, summed over the places.
    """
    frame = FaceFrame(pixels, face)
    gray = frame.image @ np.array([0.299, 0.587, 0.114], np.float32)
    places = [((-0.15, 0.15), (-0.45, 0.35)), ((-0.75, -0.3), (0.1, 0.7)), ((0.3, 0.75), (0.1, 0.7))]
    bridge, right, left = (_dip(frame, gray, u, v) for u, v in places)
    return bridge + (right + left) / 2


def _dip(frame: FaceFrame, gray: np.ndarray, u, v) -> float:
    """Deepest horizontal dark line in a box (IOD units), in per cent of the local brightness."""
    cols = [round((x - _U_RANGE[0]) * UNIT) for x in u]
    rows = [round((y - _V_RANGE[0]) * UNIT) for y in v]
    box, valid = gray[rows[0] : rows[1], cols[0] : cols[1]], frame.valid[rows[0] : rows[1], cols[0] : cols[1]]
    if valid.mean() < 0.8:
        return 0.0
    profile = box.mean(axis=1)
    window = max(3, UNIT // 4) | 1
    padded = np.pad(profile, window // 2, mode="edge")
    local = np.convolve(padded, np.ones(window) / window, mode="valid")
    return float(np.max((local - profile) / np.maximum(local, 0.05)) * 100)


def beard_amount(colours: dict[str, np.ndarray]) -> float:
    """0 (clean-shaven) or 0.5–1: how far the chin's colour has moved from the skin towards the hair."""
    skin, hair, chin = (_lab(colours[k][None])[0] for k in ("skin", "hair", "chin"))
    to_hair, from_skin = np.linalg.norm(chin - hair), np.linalg.norm(chin - skin)
    darker = chin[0] < skin[0] - 8
    share = from_skin / max(from_skin + to_hair, 1e-6)
    if not darker or from_skin < 14 or share < 0.4:
        return 0.0
    return float(np.clip(0.5 + (share - 0.4) / 0.6 * 0.5, 0.5, 1.0))


@dataclass
class HairLayout:
    """Where the photo's hair is, in IOD above the eye line: the front hairline and the top."""

    hairline: float  # forehead height: eye line → where the hair starts, at the middle
    top: float  # eye line → the top of the hair
    long: bool  # hair beside the jaw and neck, below the ears
    coverage: float  # share of hair pixels above the forehead (≈ 0: shaved or bald)


def hair_layout(pixels: np.ndarray, face: FaceLandmarks, colours: dict[str, np.ndarray]) -> HairLayout:
    """Scan the face frame for hair: pixels nearer the hair colour than the skin and the backdrop."""
    frame = FaceFrame(pixels, face)
    flat = frame.image.reshape(-1, 3)
    d_hair, d_skin, d_back = (
        _delta(flat, colours[k]).reshape(frame.valid.shape) for k in ("hair", "skin", "background")
    )
    hair = (d_hair < d_skin) & (d_hair < d_back) & (d_hair < 30) & frame.valid

    def fraction(u, v) -> float:
        """Share of hair among the box's pixels that are in the photo (NaN when the box is mostly outside)."""
        cols = [round((x - _U_RANGE[0]) * UNIT) for x in u]
        rows = [round((y - _V_RANGE[0]) * UNIT) for y in v]
        inside = frame.valid[rows[0] : rows[1], cols[0] : cols[1]]
        return float(hair[rows[0] : rows[1], cols[0] : cols[1]].sum() / inside.sum()) if inside.mean() > 0.3 else np.nan

    heights = np.arange(0.75, 3.1, 1 / UNIT)  # from above the brows
    centre = np.array([fraction((-0.35, 0.35), (-h - 1 / UNIT, -h)) for h in heights])
    crown = np.array([fraction((-0.8, 0.8), (-h - 1 / UNIT, -h)) for h in heights])
    seen = np.isfinite(centre)
    above = np.nonzero(centre > 0.5)[0]
    covered = np.nonzero(crown > 0.3)[0]
    if not above.size and seen.mean() < 0.5:  # the top of the head is outside the photo: assume a usual hairline
        above = np.array([np.searchsorted(heights, 1.3)])
    # long: hair beside the jaw on both sides, continuing from beside the ears (dark clothes or a dark
    # backdrop beside the jaw alone do not count)
    ears = np.nan_to_num([fraction(u, (-0.3, 0.7)) for u in ((-1.4, -1.0), (1.0, 1.4))])  # unseen: no hair
    jaw = np.nan_to_num([fraction(u, (0.8, 2.2)) for u in ((-1.5, -1.05), (1.05, 1.5))])
    long_hair = ears.mean() >= 0.3 and jaw.mean() >= 0.25 and jaw.min() >= 0.2
    coverage = fraction((-0.8, 0.8), (-2.4, -1.2))
    return HairLayout(
        hairline=float(heights[above[0]]) if len(above) else 3.0,
        top=float(heights[covered[-1]]) if len(covered) else 0.0,
        long=bool(long_hair),
        coverage=1.0 if np.isnan(coverage) else coverage,  # unseen: not evidence of a bald head
    )


def to_portrait_frame(pixels: np.ndarray, face: FaceLandmarks, targets: np.ndarray, size: int) -> np.ndarray:
    """The photo warped so its eyes and mouth land on ``targets`` ``[3, 2]`` of a ``size``² portrait."""
    source = np.stack([face.right_eye, face.left_eye, face.mouth])
    return _warp(pixels, _similarity(source, targets), (size, size))


def hair_mask(frame: np.ndarray, colours: dict[str, np.ndarray]) -> np.ndarray:
    """Which pixels of a portrait-frame photo ``[S, S, 3]`` are hair: nearer the hair colour than
    skin, backdrop and clothes, in the rows above the chin (clothes below can share the colour)."""
    flat = frame.reshape(-1, 3)
    names = ("hair", "skin", "background", "shirt")
    distances = np.stack([_delta(flat, colours[n]) for n in names])  # [4, P]
    mask = (distances.argmin(0) == 0) & (distances[0] < 30)
    mask = mask.reshape(frame.shape[:2])
    mask[round(frame.shape[0] * 0.72) :] = False
    return mask
