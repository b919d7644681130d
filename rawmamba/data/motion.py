"""Synthetic video motion: a camera moving over a large scene canvas, plus moving objects, with exact flow.

The world is a background canvas (a dead-leaves scene larger than the frame) and a few sprites (small
dead-leaves patches with soft elliptical alpha) that slide over it. Frame ``t`` samples the world at

    q = c + s_t * (p - c_f) + d_t            (camera: zoom s_t, translation d_t; p in frame pixels)

where ``c_f`` is the frame centre and ``c`` the canvas point under it at ``t = 0``. Sprite ``k`` covers
canvas point ``q`` with its own point ``q - o_k(t)``. Camera and objects move linearly in time (constant
velocity, constant zoom rate), and frame 0 has ``s_0 = 1``, ``d_0 = 0``.

Backward flow to frame 0 (docs/CONVENTIONS.md): the pixel ``p`` of frame ``t`` shows world point ``q``
(background) or sprite point ``u = q - o_k(t)``, which frame 0 shows at ``p0 = q - c + c_f`` or
``p0 = u + o_k(0) - c + c_f``; ``flow = p0 - p``. A pixel belongs to the topmost sprite whose alpha there
is above 1/2. The flow is exact geometry (also where the point is hidden in frame 0); pixel values are
bilinear samples of the canvas, so warping frame 0 by the flow reproduces frame t up to interpolation,
except at disocclusions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from rawmamba.data.scenes import dead_leaves

__all__ = ["MotionParams", "random_motion", "render_motion"]


@dataclass(frozen=True)
class MotionParams:
    """One synthetic video's motion.

    Attributes:
        velocity: camera translation per frame ``(dx, dy)`` in canvas pixels.
        zoom_rate: change of the sampling scale per frame (``s_t = 1 + zoom_rate * t``; > 0 zooms out).
        objects: per sprite ``(x0, y0, vx, vy)``: top-left canvas position at t = 0 and velocity per frame.
    """

    velocity: tuple[float, float]
    zoom_rate: float
    objects: tuple[tuple[float, float, float, float], ...]


def random_motion(height: int, width: int, frames: int, rng: np.random.Generator, *, max_speed: float = 3.0,
                  max_zoom: float = 0.1, n_objects: tuple[int, int] = (1, 3), object_speed: float = 4.0,
                  object_size: tuple[float, float] = (0.2, 0.4)) -> tuple[MotionParams, tuple[int, int]]:
    """Random motion for a ``frames``-frame ``height x width`` video, and the sprite size ``(h, w)``.

    Args:
        max_speed: largest camera speed, pixels per frame.
        max_zoom: largest total zoom change over the video (0.1 = 10%).
        n_objects: inclusive range of the number of moving sprites.
        object_speed: largest sprite speed, pixels per frame.
        object_size: sprite side as a fraction of ``height``.
    """
    span = max(frames - 1, 1)
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0, max_speed)
    side = int(height * rng.uniform(*object_size))
    objects = []
    for _ in range(int(rng.integers(n_objects[0], n_objects[1] + 1))):
        x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
        vx, vy = rng.uniform(-object_speed, object_speed, 2)
        objects.append((float(x0), float(y0), float(vx), float(vy)))
    params = MotionParams(velocity=(float(speed * np.cos(angle)), float(speed * np.sin(angle))),
                          zoom_rate=float(rng.uniform(-max_zoom, max_zoom) / span), objects=tuple(objects))
    return params, (side, side)


def _sample(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def render_motion(height: int, width: int, frames: int, rng: np.random.Generator, *,
                  params: MotionParams | None = None, sprite_size: tuple[int, int] | None = None,
                  background: Callable[[int, int, np.random.Generator], np.ndarray] = dead_leaves,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Render a synthetic linear raw-RGB video and its backward flow to frame 0.

    Args:
        height, width, frames: video size.
        rng: random generator for the scenes (and the motion when ``params`` is None).
        params, sprite_size: the motion (default: ``random_motion``); object positions are frame pixels at
            t = 0 (the canvas is aligned with frame 0 away from its margin).
        background: ``background(h, w, rng) -> (h, w, 3)`` linear canvas, larger than the frame by the
            margin the motion needs (default: a dead-leaves scene).

    Returns:
        ``frames (T, H, W, 3)`` float32 in [0, 1] (linear) and ``flow (T, H, W, 2)`` float32 in pixels
        (``flow[0] == 0``).
    """
    if params is None:
        params, sprite_size = random_motion(height, width, frames, rng)
    sprite_size = sprite_size or (height // 4, height // 4)
    span = frames - 1
    vx, vy = params.velocity
    zoom_end = 1 + abs(params.zoom_rate) * span
    # Canvas margin: enough for the camera path plus the zoom-out, so sampling stays inside it.
    margin = int(np.ceil(max(abs(vx), abs(vy)) * span + (zoom_end - 1) * max(height, width) / 2)) + 4
    canvas = np.ascontiguousarray(background(height + 2 * margin, width + 2 * margin, rng), dtype=np.float32)
    sprites = []
    for _ in params.objects:
        sh, sw = sprite_size
        patch = dead_leaves(sh, sw, rng, n_shapes=40, n_extremes=0)
        y, x = np.mgrid[0:sh, 0:sw].astype(np.float32)
        inside = ((x - (sw - 1) / 2) / (sw / 2)) ** 2 + ((y - (sh - 1) / 2) / (sh / 2)) ** 2 <= 0.8
        alpha = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 0.8)
        sprites.append((patch, alpha))

    py, px = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    video = np.empty((frames, height, width, 3), np.float32)
    flow = np.empty((frames, height, width, 2), np.float32)
    for t in range(frames):
        scale = 1 + params.zoom_rate * t
        # Canvas coordinates (without the margin) of each frame pixel.
        qx = cx + scale * (px - cx) + vx * t
        qy = cy + scale * (py - cy) + vy * t
        frame = _sample(canvas, qx + margin, qy + margin)
        fx, fy = qx - px, qy - py  # background: frame 0 shows q at p0 = q
        for (patch, alpha), (x0, y0, ox, oy) in zip(sprites, params.objects, strict=True):
            ux, uy = qx - (x0 + ox * t), qy - (y0 + oy * t)  # sprite coordinates
            a = cv2.remap(alpha, ux, uy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0.0)
            colour = _sample(patch, ux, uy)
            frame = a[..., None] * colour + (1 - a[..., None]) * frame
            owner = a > 0.5
            fx = np.where(owner, ux + x0 - px, fx)  # frame 0 shows sprite point u at u + o_k(0)
            fy = np.where(owner, uy + y0 - py, fy)
        video[t] = frame
        flow[t] = np.stack([fx, fy], axis=-1)
    return np.clip(video, 0.0, 1.0), flow
