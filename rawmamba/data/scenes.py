"""Scene content that needs nothing downloaded: procedural dead-leaves scenes and photos bundled with scikit-image.

``dead_leaves`` paints overlapping shapes (ellipses and rectangles) with power-law sizes,
as in the classic "dead leaves" model of natural-image statistics, each filled with a flat colour, a
linear gradient or a texture (stripes or smooth noise), over a few large very bright and very dark
regions so that the scene spans a high dynamic range. Its output is *linear* light, meant as camera
raw-RGB for the ISP simulator.

``bundled_photo`` returns one of the colour photographs shipped inside the scikit-image wheel (they load
offline; most other ``skimage.data`` images need a download). They are *sRGB* and are turned into raw
with ``rawmamba.isp.unprocess_photo``.

Everything draws from an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from rawmamba.errors import RawMambaError

__all__ = ["dead_leaves", "bundled_photo", "random_photo_crop", "BUNDLED_PHOTOS"]

# scikit-image photographs that ship inside the wheel (checked offline with scikit-image 0.26).
BUNDLED_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
    "stereo_motorcycle",
)


def _log_uniform(rng: np.random.Generator, low: float, high: float, size=None) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def _colour(rng: np.random.Generator, low: float, high: float, saturation: float) -> np.ndarray:
    """A linear colour: log-uniform brightness in [low, high] times a chroma whose distance from grey is
    drawn up to ``saturation`` (1: as saturated as a Dirichlet(2, 2, 2) draw, 0: neutral)."""
    chroma = 1.0 + rng.uniform(0, saturation) * (rng.dirichlet(np.full(3, 2.0)) * 3.0 - 1.0)
    return _log_uniform(rng, low, high) * chroma


def _fill(rng: np.random.Generator, hh: int, ww: int, *, low: float, high: float,
          gradient_prob: float, texture_prob: float, saturation: float) -> np.ndarray:
    """The ``(hh, ww, 3)`` linear fill of one shape's bounding box: flat colour, gradient or texture."""
    base = _colour(rng, low, high, saturation)
    fill = np.broadcast_to(base.astype(np.float32), (hh, ww, 3)).copy()
    y, x = np.mgrid[0:hh, 0:ww].astype(np.float32)
    u = rng.uniform(0, 1)
    if u < gradient_prob:
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * x + np.sin(angle) * y) / max(hh, ww, 1)
        ramp = ramp - ramp.min()
        end = _colour(rng, low, high, saturation)
        fill = fill + ramp[..., None] * (end - base).astype(np.float32)
    elif u < gradient_prob + texture_prob:
        if rng.uniform() < 0.5:
            angle = rng.uniform(0, np.pi)
            period = rng.uniform(3.0, 24.0)
            phase = (np.cos(angle) * x + np.sin(angle) * y) * (2 * np.pi / period)
            texture = 0.5 + 0.5 * np.sin(phase)
        else:
            coarse = rng.uniform(0, 1, (max(2, hh // 6), max(2, ww // 6))).astype(np.float32)
            texture = cv2.resize(coarse, (ww, hh), interpolation=cv2.INTER_CUBIC)
        contrast = rng.uniform(0.2, 0.8)
        fill = fill * (1 - contrast + contrast * np.clip(texture, 0, 1))[..., None]
    return np.clip(fill, 0.0, 1.0)


def _shape_mask(rng: np.random.Generator, hh: int, ww: int) -> np.ndarray:
    """A boolean ``(hh, ww)`` shape filling its box: the inscribed ellipse (70%) or the whole rectangle."""
    if rng.uniform() < 0.7:
        y, x = np.mgrid[0:hh, 0:ww].astype(np.float32)
        return ((x - (ww - 1) / 2) / (ww / 2)) ** 2 + ((y - (hh - 1) / 2) / (hh / 2)) ** 2 <= 1.0
    return np.ones((hh, ww), dtype=bool)


def dead_leaves(height: int, width: int, rng: np.random.Generator, *, n_shapes: int = 300,
                radius_range: tuple[float, float] = (0.01, 0.3), exponent: float = 3.0,
                brightness_range: tuple[float, float] = (0.02, 0.7), n_extremes: int = 2,
                gradient_prob: float = 0.3, texture_prob: float = 0.3, saturation: float = 0.6,
                blur_sigma: float = 0.7) -> np.ndarray:
    """A procedural linear raw-RGB scene, ``(height, width, 3)`` float32 in [0, 1].

    Args:
        height, width: output size in pixels.
        rng: the random generator (the scene is a pure function of its state).
        n_shapes: number of shapes painted, back to front.
        radius_range: shape radii as fractions of ``max(height, width)``.
        exponent: radii are drawn from ``p(r) ~ r**-exponent`` (3 is the scale-invariant dead-leaves law).
        brightness_range: log-uniform range of a shape's mean linear brightness.
        n_extremes: large regions painted first, alternately very bright (0.8-1.0, clipping highlights)
            and very dark (0.002-0.01), so that every scene spans a high dynamic range.
        gradient_prob, texture_prob: probabilities that a shape gets a linear gradient or a texture
            (stripes or smooth noise) instead of a flat colour.
        saturation: largest distance of a shape's colour from grey (0: a grey world, 1: vivid colours).
            Colours are reflectances: neutral (equal RGB) means grey under the scene light.
        blur_sigma: Gaussian blur (pixels) applied at the end as an optical low-pass, against aliasing.
    """
    if height < 2 or width < 2:
        raise RawMambaError(f"scene size must be at least 2x2, got {height}x{width}")
    size = max(height, width)
    background = _fill(rng, height, width, low=brightness_range[0], high=brightness_range[1],
                       gradient_prob=1.0, texture_prob=0.0, saturation=saturation)
    image = background.astype(np.float32)
    r_lo, r_hi = radius_range[0] * size, radius_range[1] * size
    # Inverse-CDF sampling of p(r) ~ r^-exponent on [r_lo, r_hi].
    a = 1.0 - exponent
    uniform = rng.uniform(0, 1, n_shapes)
    radii = (r_lo**a + uniform * (r_hi**a - r_lo**a)) ** (1.0 / a)
    extremes = [(0.8, 1.0) if i % 2 == 0 else (0.002, 0.01) for i in range(n_extremes)]
    jobs = [(size * rng.uniform(0.25, 0.45), lohi) for lohi in extremes]
    jobs += [(float(r), tuple(brightness_range)) for r in radii]
    for radius, (low, high) in jobs:
        hh = max(2, int(round(2 * radius * rng.uniform(0.6, 1.4))))
        ww = max(2, int(round(2 * radius * rng.uniform(0.6, 1.4))))
        top = int(rng.integers(-hh // 2, height - hh // 2))
        left = int(rng.integers(-ww // 2, width - ww // 2))
        mask = _shape_mask(rng, hh, ww)
        fill = _fill(rng, hh, ww, low=low, high=high, gradient_prob=gradient_prob, texture_prob=texture_prob,
                     saturation=saturation)
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + hh, height), min(left + ww, width)
        if y1 <= y0 or x1 <= x0:
            continue
        sub = mask[y0 - top:y1 - top, x0 - left:x1 - left]
        image[y0:y1, x0:x1][sub] = fill[y0 - top:y1 - top, x0 - left:x1 - left][sub]
    if blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=len(BUNDLED_PHOTOS))
def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    try:
        image = getattr(skimage.data, name)()
    except Exception as exc:  # a missing file makes scikit-image try (and fail) to download
        raise RawMambaError(f"scikit-image photo {name!r} is not available offline: {exc}") from exc
    if isinstance(image, tuple):  # stereo pairs: take the left view
        image = image[0]
    if image.ndim != 3 or image.shape[2] < 3:
        raise RawMambaError(f"scikit-image image {name!r} is not a colour photo")
    image = image[..., :3].astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    image.setflags(write=False)
    return image


def bundled_photo(name: str) -> np.ndarray:
    """One of ``BUNDLED_PHOTOS`` as an sRGB ``(H, W, 3)`` float32 array in [0, 1] (read-only, cached)."""
    if name not in BUNDLED_PHOTOS:
        raise RawMambaError(f"photo {name!r} is not one of {BUNDLED_PHOTOS}")
    return _load_photo(name)


def random_photo_crop(height: int, width: int, rng: np.random.Generator, *,
                      names: tuple[str, ...] = BUNDLED_PHOTOS, scale_range: tuple[float, float] = (0.6, 1.0)
                      ) -> tuple[str, np.ndarray]:
    """A random crop of a random bundled photo, resized to ``(height, width, 3)`` sRGB float32 in [0, 1].

    The crop covers ``scale_range`` of the largest window of the output's aspect ratio that fits the
    photo, at a random position, with a random left-right flip. Returns ``(photo name, crop)``.
    """
    name = names[int(rng.integers(len(names)))]
    photo = bundled_photo(name)
    ph, pw = photo.shape[:2]
    fit = min(ph / height, pw / width)
    scale = rng.uniform(*scale_range)
    ch, cw = max(2, int(height * fit * scale)), max(2, int(width * fit * scale))
    top, left = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = photo[top:top + ch, left:left + cw]
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    resized = cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA)
    return name, np.clip(resized, 0.0, 1.0).astype(np.float32)
