"""Vectorised ray casting of a parametric head: identity + per-frame state → uint8 RGB frames.

The head is a union of ellipsoids (skull, jaw, cheeks, nose, ears, eyes, hair shell, bun) that
turn with the head, plus a neck and shoulders that stay put. Every ray of every frame in a
batch is intersected with every ellipsoid at once: with axis-aligned radii the quadratic's
coefficients are two matrix products, so a batch of frames costs a few array passes. Detail
that needs no geometry (iris, eyelids, brows, lips, mouth interior, teeth, beard, glasses) is
painted from the hit point's head-local coordinates. Lambert shading from a key light fixed in
the world plus a fill light at the camera makes 3-D shape read from the side. Frames are
rendered ``supersample``² times larger and box-filtered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .heads import HAIR_STYLES, HeadParams
from .state import FrameState

JAW_DROP = 0.24  # head units the jaw and lower lip travel at mouth_open = 1
_EYE_Y, _MOUTH_Y = 0.12, -0.44
_PIVOT = np.array([0.0, -0.75, -0.05], np.float32)  # the head turns about the top of the neck
_KEY_LIGHT = (np.array([-0.45, 0.55, 0.7]) / np.linalg.norm([-0.45, 0.55, 0.7])).astype(np.float32)
_SKIN, _EYE, _HAIR, _SHIRT = 0, 1, 2, 3
PART_NAMES = (
    "skull", "jaw", "cheek_r", "cheek_l", "nose", "ear_r", "ear_l", "eye_r", "eye_l", "hair", "bun", "neck", "shoulders",
)  # fmt: skip
_JAW_PRIM, _EYE_L_PRIM, _HAIR_PRIM, _NECK_PRIM = 1, 8, 9, 11  # indices into PART_NAMES


@dataclass(frozen=True)
class RenderConfig:
    """Image size, anti-aliasing and the virtual camera (distance and field of view)."""

    size: int = 64
    supersample: int = 2
    fov_deg: float = 30.0
    distance: float = 6.0
    target: tuple[float, float, float] = (0.0, -0.15, 0.0)


@dataclass(frozen=True)
class _Geometry:
    """An identity's ellipsoids: head group (turns with the head) then body group (fixed)."""

    centres: np.ndarray  # [E, 3]
    inv_sq_radii: np.ndarray  # [E, 3]
    material: np.ndarray  # [E]
    num_head: int
    albedo: np.ndarray  # [4, 3] per material
    bound_centre: np.ndarray  # [3] sphere around the head group (jaw fully dropped): rays missing it skip the head
    bound_radius: float


def render(head: HeadParams, state: FrameState, config: RenderConfig = RenderConfig()) -> np.ndarray:
    """Render ``len(state)`` frames of ``head``: uint8 ``[T, size, size, 3]``."""
    return _render_all(head, state, config)[0]


def render_parts(head: HeadParams, state: FrameState, config: RenderConfig = RenderConfig()) -> np.ndarray:
    """Which ellipsoid each pixel centre shows (-1 = background): int8 ``[T, size, size]``, see ``PART_NAMES``."""
    return _render_all(head, state, config)[1]


def render_with_parts(
    head: HeadParams, state: FrameState, config: RenderConfig = RenderConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[T, size, size, 3]`` uint8 and their part labels ``[T, size, size]`` int8 in one pass
    (compositing a head onto another background needs both; ``data/wild.py``)."""
    return _render_all(head, state, config)


def render_reference(head: HeadParams, config: RenderConfig = RenderConfig()) -> np.ndarray:
    """The identity's reference portrait: frontal, neutral, mouth closed, eyes open. ``[size, size, 3]``."""
    return render(head, FrameState.neutral(1), config)[0]


def _build_geometry(head: HeadParams) -> _Geometry:
    w, h, d = head.skull
    eye_r = head.eye_size
    eye_z = d * np.sqrt(max(1e-3, 1 - (head.eye_spacing / w) ** 2 - ((_EYE_Y - 0.1) / h) ** 2)) - 0.55 * eye_r
    hair_c, hair_r = _hair_shell(head)
    bun = (
        ((0.0, 0.72, -0.72), (0.3, 0.28, 0.3)) if HAIR_STYLES[head.hair_style] == "bun" else ((0, 0.1, 0), (1e-2,) * 3)
    )
    prims = [  # (centre, radii, material)
        ((0.0, 0.1, 0.0), (w, h, d), _SKIN),
        ((0.0, -0.45, 0.12), (head.jaw_width * w, 0.5 * head.jaw_length, 0.72), _SKIN),
        ((-0.42, -0.15, 0.5), (head.cheek, 0.9 * head.cheek, head.cheek), _SKIN),
        ((0.42, -0.15, 0.5), (head.cheek, 0.9 * head.cheek, head.cheek), _SKIN),
        ((0.0, -0.12, 0.84), (head.nose_width, 0.6 * head.nose_length, head.nose_depth), _SKIN),
        ((-(w - 0.02), 0.02, -0.05), tuple(head.ear_size * np.array([0.09, 0.22, 0.13])), _SKIN),
        ((w - 0.02, 0.02, -0.05), tuple(head.ear_size * np.array([0.09, 0.22, 0.13])), _SKIN),
        ((-head.eye_spacing, _EYE_Y, eye_z), (eye_r,) * 3, _EYE),
        ((head.eye_spacing, _EYE_Y, eye_z), (eye_r,) * 3, _EYE),
        (hair_c, hair_r, _HAIR),
        (*bun, _HAIR),
        ((0.0, -1.05, -0.08), (0.36, 0.55, 0.36), _SKIN),
        ((0.0, -2.05, -0.1), (1.45, 0.62, 0.62), _SHIRT),
    ]
    centres = np.array([p[0] for p in prims], np.float32)
    radii = np.array([p[1] for p in prims], np.float32)
    albedo = np.array([head.skin, (0.92, 0.92, 0.9), head.hair, head.shirt], np.float32)
    k = len(prims) - 2
    low, high = (centres[:k] - radii[:k]).min(0), (centres[:k] + radii[:k]).max(0)
    low[1] -= JAW_DROP
    bound_centre = (low + high) / 2
    bound_radius = float(np.max(np.linalg.norm(centres[:k] - bound_centre, axis=1) + radii[:k].max(1))) + JAW_DROP
    return _Geometry(centres, 1.0 / radii**2, np.array([p[2] for p in prims]), k, albedo, bound_centre, bound_radius)


def _hair_shell(head: HeadParams) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Centre and radii of the hair ellipsoid; ``_hair_mask`` clips it to the hair region."""
    w, h, d = head.skull
    style = HAIR_STYLES[head.hair_style]
    v = {"volume": 0.1 + head.hair_volume, "receding": 0.03}.get(style, 0.03 + 0.4 * head.hair_volume)
    if style == "long":
        return (0.0, -0.3, -0.04), (w + v, h + v + 0.45, d + v)
    lift = 0.08 if style == "volume" else 0.0
    return (0.0, 0.1 + lift, -0.03), (w + v, h + v, d + v)


def _hair_mask(head: HeadParams, p: np.ndarray) -> np.ndarray:
    """Which points of the hair shell are hair: above a hairline high in front and low at the back."""
    style = HAIR_STYLES[head.hair_style]
    y_front = 0.78 if style == "receding" else head.hairline
    y_back = {"long": -1.6, "receding": -0.15}.get(style, -0.3)
    z_front, z_back = 0.45 * head.skull[2], -0.1
    s = np.clip((p[..., 2] - z_back) / (z_front - z_back), 0.0, 1.0)
    return p[..., 1] > y_back + s * (y_front - y_back)


@dataclass(frozen=True)
class _Pose:
    """One frame's scalars: face state, head rotation (head → world) and camera rays."""

    mouth_open: float
    lip_round: float
    blink: float
    brow: float
    rotation: np.ndarray  # [3, 3]
    position: np.ndarray  # [3] camera centre, world
    dirs: np.ndarray  # [P, 3] unit ray directions, world, row-major pixels from the top-left


def _render_all(head: HeadParams, state: FrameState, config: RenderConfig) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[T, size, size, 3]`` uint8 and part labels ``[T, size, size]`` int8."""
    geometry = _build_geometry(head)
    background = _background(head, config)
    grid, inv_norm = _pixel_grid(config)
    rotations = head_rotation_matrices(state.head_rotation)
    position, forward, right, up = camera_frames(state.azimuth, state.elevation, config)
    frames = np.empty((len(state), config.size, config.size, 3), np.uint8)
    parts = np.empty((len(state), config.size, config.size), np.int8)
    for i in range(len(state)):
        dirs = (forward[i] + grid[:, :1] * right[i] + grid[:, 1:] * up[i]) * inv_norm  # [P, 3]
        face = (state.mouth_open[i], state.lip_round[i], state.blink[i], state.brow[i])
        pose = _Pose(*map(float, face), rotations[i], position[i], dirs)
        colour, part = _render_frame(head, geometry, pose, background)
        frames[i], parts[i] = _downsample(colour, config), _part_labels(part, config)
    return frames, parts


def _pixel_grid(config: RenderConfig) -> tuple[np.ndarray, np.ndarray]:
    """Tangent-plane offsets ``[P, 2]`` (x right, y up) of the supersampled pixel centres and 1/|ray| ``[P, 1]``."""
    n = config.size * config.supersample
    ticks = ((np.arange(n) + 0.5) / n * 2 - 1) * np.tan(np.radians(config.fov_deg) / 2)
    gx, gy = np.meshgrid(ticks, -ticks)  # image y grows downwards
    grid = np.stack([gx.ravel(), gy.ravel()], -1).astype(np.float32)
    return grid, (1.0 / np.sqrt(1.0 + (grid**2).sum(-1)))[:, None].astype(np.float32)


def camera_frames(azimuth: np.ndarray, elevation: np.ndarray, config: RenderConfig) -> tuple[np.ndarray, ...]:
    """Camera centre, forward, right and up vectors (world, each ``[T, 3]``) orbiting ``config.target``."""
    az, el = np.radians(np.asarray(azimuth, np.float64)), np.radians(np.asarray(elevation, np.float64))
    offset = np.stack([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], -1)
    forward = -offset
    right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    up = np.cross(right, forward)
    position = np.asarray(config.target) + config.distance * offset
    return tuple(v.astype(np.float32) for v in (position, forward, right, up))


def head_rotation_matrices(rotation_deg: np.ndarray) -> np.ndarray:
    """``[N, 3]`` (yaw, pitch, roll) degrees → ``[N, 3, 3]`` = Ry(yaw) Rx(pitch) Rz(roll), head → world."""
    yaw, pitch, roll = np.radians(np.asarray(rotation_deg, np.float64)).T
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(-1, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return (ry @ rx @ rz).astype(np.float32)


def _intersect(origin: np.ndarray, dirs: np.ndarray, centres: np.ndarray, inv_sq: np.ndarray) -> np.ndarray:
    """Nearest positive hit distance of each ray with each ellipsoid (inf = miss): ``[M, E]``.

    origin ``[3]``, dirs ``[M, 3]``, centres ``[E, 3]``, inv_sq ``[E, 3]`` (1/radius²). Solves
    a t² + 2 b t + c = 0 with a = Σ d²/r², b = Σ d (o - c)/r², c = Σ (o - c)²/r² - 1.
    """
    oc = origin - centres  # [E, 3]
    a = (dirs * dirs) @ inv_sq.T  # [M, E]
    b = dirs @ (oc * inv_sq).T  # [M, E]
    c = (oc * oc * inv_sq).sum(-1) - 1.0  # [E]
    disc = b * b
    disc -= a * c
    with np.errstate(invalid="ignore"):
        t = np.sqrt(disc, out=disc)  # NaN where the ray misses
    t += b
    t /= a
    np.negative(t, out=t)  # t = (-b - sqrt(disc)) / a
    t[~(t > 0)] = np.inf  # misses (NaN) and hits behind the camera
    return t


def _near_head(geometry: _Geometry, origin_h: np.ndarray, dirs_h: np.ndarray) -> np.ndarray:
    """Which rays pass through the head's bounding sphere: ``[P]`` bool (unit rays, camera outside)."""
    oc = origin_h - geometry.bound_centre
    b = dirs_h @ oc
    return b * b - (oc @ oc - geometry.bound_radius**2) > 0


def _head_hits(head: HeadParams, geometry: _Geometry, pose: _Pose, origin_h, dirs_h) -> tuple[np.ndarray, ...]:
    """Nearest head-group hit of the rays near the head: ray indices, distances, parts, and centres ``[E_head, 3]``."""
    centres = geometry.centres[: geometry.num_head].copy()
    centres[_JAW_PRIM, 1] -= JAW_DROP * pose.mouth_open
    rays = np.nonzero(_near_head(geometry, origin_h, dirs_h))[0]
    dirs = dirs_h[rays]
    t = _intersect(origin_h, dirs, centres, geometry.inv_sq_radii[: geometry.num_head])  # [M, E_head]
    hair_points = origin_h + t[:, _HAIR_PRIM, None] * dirs
    t[:, _HAIR_PRIM] = np.where(_hair_mask(head, hair_points), t[:, _HAIR_PRIM], np.inf)
    part = np.argmin(t, -1)
    return rays, t[np.arange(len(rays)), part], part, centres


def _render_frame(
    head: HeadParams, geometry: _Geometry, pose: _Pose, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Colours ``[P, 3]`` in [0, 1] and part indices ``[P]`` (-1 = background) of one frame."""
    origin_h = (pose.position - _PIVOT) @ pose.rotation + _PIVOT  # row form of Rᵀ(x - q) + q
    dirs_h = pose.dirs @ pose.rotation
    k = geometry.num_head
    t_body = _intersect(pose.position, pose.dirs, geometry.centres[k:], geometry.inv_sq_radii[k:])  # [P, 2]
    part = np.argmin(t_body, -1) + k
    t = t_body.min(-1)
    rays, t_head, part_head, centres_head = _head_hits(head, geometry, pose, origin_h, dirs_h)
    closer = t_head < t[rays]
    t[rays[closer]], part[rays[closer]] = t_head[closer], part_head[closer]
    hit = np.nonzero(np.isfinite(t))[0]
    centres = np.concatenate([centres_head, geometry.centres[k:]])
    colour = background.copy()
    colour[hit] = _shade(head, geometry, pose, part[hit], t[hit], hit, origin_h, dirs_h, centres)
    return colour, np.where(np.isfinite(t), part, -1)


def _shade(head, geometry, pose: _Pose, part, t, rays, origin_h, dirs_h, centres) -> np.ndarray:
    """Albedo (with painted detail) × (ambient + key + fill) of the hit rays: ``[M, 3]``."""
    is_body = (part >= geometry.num_head)[:, None]
    dirs = pose.dirs[rays]
    points_h = origin_h + t[:, None] * dirs_h[rays]
    points_w = pose.position + t[:, None] * dirs
    normal = (np.where(is_body, points_w, points_h) - centres[part]) * geometry.inv_sq_radii[part]
    normal = np.where(is_body, normal, normal @ pose.rotation.T)  # head normals → world
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-8
    albedo = _paint(head, pose, geometry.material[part], part, points_h, geometry.albedo[geometry.material[part]])
    key = np.clip(normal @ _KEY_LIGHT, 0.0, None)[:, None]
    fill = np.clip(-(normal * dirs).sum(-1), 0.0, None)[:, None]
    return albedo * (0.3 + 0.6 * key + 0.3 * fill)


def _paint(head: HeadParams, pose: _Pose, material, part, p, albedo) -> np.ndarray:
    """Paint eyes (iris, pupil, lids), face detail, glasses and hair texture onto ``albedo`` in place."""
    skin = (material == _SKIN) & (part < _NECK_PRIM)
    eye = material == _EYE
    if eye.any():
        albedo[eye] = _paint_eyes(head, pose, p[eye], part[eye])
    if skin.any():
        albedo[skin] = _paint_face(head, pose, p[skin], albedo[skin])
    if head.glasses and (skin | eye).any():
        albedo[skin | eye] = _paint_glasses(head, p[skin | eye], albedo[skin | eye])
    hair = material == _HAIR
    albedo[hair] *= (0.88 + 0.12 * np.sin(55.0 * p[hair][:, 1] + 9.0 * p[hair][:, 0]))[:, None]
    return albedo


def _paint_eyes(head: HeadParams, pose: _Pose, p: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Sclera, iris, pupil and an upper lid that covers the eye from the top as blink → 1."""
    side = np.where(part == _EYE_L_PRIM, 1.0, -1.0)
    rel_x = (p[:, 0] - side * head.eye_spacing) / head.eye_size
    rel_y = (p[:, 1] - _EYE_Y) / head.eye_size
    radial = np.hypot(rel_x, rel_y)
    colour = np.tile(np.array([0.92, 0.92, 0.9], np.float32), (len(p), 1))
    colour[radial < 0.55] = head.eye_colour
    colour[radial < 0.25] = (0.03, 0.03, 0.03)
    colour[rel_y > 0.55 - 1.7 * pose.blink] = np.asarray(head.skin, np.float32) * 0.85
    return colour


def _paint_face(head: HeadParams, pose: _Pose, p: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Brows, beard, lips, mouth interior and teeth on skin points ``p`` (head-local ``[M, 3]``)."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    front = z > 0.35
    colour = colour.copy()
    brow_y = _EYE_Y + head.brow_height + 0.07 * pose.brow - 0.9 * (np.abs(x) - head.eye_spacing) ** 2
    brow = front & (np.abs(np.abs(x) - head.eye_spacing) < 0.13) & (np.abs(y - brow_y) < head.brow_thickness)
    colour[brow] = np.asarray(head.hair, np.float32) * 0.7
    upper, lower = _MOUTH_Y + 0.02, _MOUTH_Y - 0.02 - JAW_DROP * pose.mouth_open
    half_w = 0.2 * (1.0 - 0.4 * pose.lip_round) * (1.0 + 0.1 * pose.mouth_open)
    centre_y, half_h = (upper + lower) / 2, (upper - lower) / 2
    r_in = (x / half_w) ** 2 + ((y - centre_y) / half_h) ** 2
    r_lip = (x / (half_w + 0.04)) ** 2 + ((y - centre_y) / (half_h + 0.045)) ** 2
    if head.beard > 0:
        beard = (z > 0.0) & (y < _MOUTH_Y + 0.1) & (r_lip > 1.3) & (y > _MOUTH_Y - 0.7)
        colour[beard] = colour[beard] * (1 - head.beard) + np.asarray(head.hair, np.float32) * head.beard
    colour[front & (r_lip < 1.0)] = head.lips
    if half_h > 0.03:
        inside = front & (r_in < 1.0)
        colour[inside] = (0.25, 0.05, 0.05)
        colour[inside & (y > upper - 0.06)] = (0.95, 0.93, 0.88)  # upper teeth
    return colour


def _paint_glasses(head: HeadParams, p: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Round frames, bridge and temple arms in a dark colour over skin and eyes."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ring = np.hypot(np.abs(x) - head.eye_spacing, y - _EYE_Y)
    radius = head.eye_size * 1.55
    band = np.abs(y - _EYE_Y - 0.03) < 0.022
    rim = (np.abs(ring - radius) < 0.028) & (z > 0.4)
    bridge = band & (np.abs(x) < head.eye_spacing - radius + 0.02) & (z > 0.5)
    arm = band & (np.abs(x) > head.eye_spacing + radius - 0.02) & (z > -0.1)
    colour = colour.copy()
    colour[(ring < radius) & (z > 0.4)] *= 0.8  # tinted lenses
    colour[rim | bridge | arm] = (0.06, 0.06, 0.08)
    return colour


def _background(head: HeadParams, config: RenderConfig) -> np.ndarray:
    """A vertical gradient of the identity's backdrop colour: ``[P, 3]``."""
    n = config.size * config.supersample
    ramp = np.repeat(np.linspace(1.05, 0.8, n, dtype=np.float32), n)[:, None]
    return np.asarray(head.background, np.float32) * ramp


def _downsample(colour: np.ndarray, config: RenderConfig) -> np.ndarray:
    """Box-filter ``[P, 3]`` supersampled colours to uint8 ``[size, size, 3]``."""
    s, size = config.supersample, config.size
    image = colour.reshape(size, s, size, s, 3).mean((1, 3))
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _part_labels(part: np.ndarray, config: RenderConfig) -> np.ndarray:
    s, size = config.supersample, config.size
    return part.reshape(size, s, size, s)[:, s // 2, :, s // 2].astype(np.int8)
