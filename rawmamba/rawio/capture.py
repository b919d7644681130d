"""Capture time: from a camera RAW file, the sRGB a user keeps, the RAW metadata, and what a DNG needs later.

The workflow the paper motivates (Sec. 1): a camera stores an ordinary sRGB image plus ~1.5% of its RAW
pixels; later, RAWMamba de-renders the sRGB back to RAW. ``capture`` runs the camera side on real files:

1. read the RAW (``open_raw``): bilinear-demosaiced raw-RGB in [0, 1], downscaled ``downscale`` times;
2. render the sRGB: LibRaw's own pipeline (``renderer="libraw"``) or one of our camera profiles
   (``rawmamba.isp``) with the file's colour matrix (when known), its as-shot white balance and an
   exposure (``exposure_ev``; None maps the 99th percentile of the white-balanced raw to white, like
   LibRaw's auto-brightness); written as JPEG (the metadata's sRGB samples are the decoded JPEG, what the
   user will de-render) or PNG;
3. sample the metadata: one RAW pixel per ``cell x cell`` cell (1.5625% for 8), ``save_metadata``;
4. write ``<stem>.camera.json`` (``CAPTURE_FORMAT``): the ``RawInfo`` (CFA, levels, white balance,
   colour matrix, orientation) that ``rawmamba derender --out x.dng --camera-info`` puts in the DNG.

``render_pair`` is shared with ``rawmamba data from-raw``, which writes CAM-layout training pairs.
Outputs are written atomically; existing ones are refused unless ``force``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from rawmamba.data.io import atomic_path, read_json, to_float, write_image, write_json
from rawmamba.data.writers import check_free
from rawmamba.errors import RawMambaError
from rawmamba.isp import Shot, get_camera, render
from rawmamba.metadata import grid_mask, sample_image_metadata, save_metadata
from rawmamba.rawio.read import HeaderlessLayout, RawFile, RawInfo, open_raw

__all__ = ["CAPTURE_FORMAT", "LIBRAW", "Captured", "auto_exposure", "capture", "capture_info_json", "load_capture_info",
           "render_pair", "write_srgb"]

CAPTURE_FORMAT = "rawmamba-capture"
LIBRAW = "libraw"
SRGB_FORMATS = ("jpg", "png")


def auto_exposure(raw_rgb: torch.Tensor, wb_gains, *, percentile: float = 0.99) -> float:
    """Exposure gain mapping the ``percentile`` of the white-balanced raw's brightest channel to 1, in [1/4, 64]."""
    gains = torch.as_tensor(wb_gains, dtype=raw_rgb.dtype)[:, None, None]
    level = float(torch.quantile((raw_rgb * gains).amax(0).flatten()[::7], percentile))
    return min(max(1.0 / max(level, 1e-6), 0.25), 64.0)


def render_pair(raw: RawFile, renderer: str = LIBRAW, *, downscale: int = 1, exposure_ev: float | None = None,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(srgb, raw_rgb, exposure)`` of one RAW file, both ``(3, H, W)`` in [0, 1] and aligned.

    Args:
        raw: an opened RAW file.
        renderer: ``"libraw"`` (rawpy.postprocess, camera white balance, auto-brightness) or a camera
            profile name for ``rawmamba.isp.get_camera`` (its look, the file's colour matrix when known).
        downscale: area downscaling of both images (4 as for the CAM data).
        exposure_ev: our renderer's exposure in stops; None is ``auto_exposure``. Ignored for LibRaw.
        seed: seed of our renderer's generator (only its local randomness; the shot is fixed).
    Returns:
        the sRGB (8-bit levels), the raw-RGB, and the exposure gain used (1 for LibRaw).
    """
    raw_rgb = raw.raw_rgb(downscale)
    if renderer.lower() == LIBRAW:
        return raw.render_libraw(downscale), raw_rgb, 1.0
    camera = get_camera(renderer)
    if raw.info.rgb_xyz_matrix is not None:
        camera = replace(camera, xyz_to_camera=tuple(raw.info.rgb_xyz_matrix))
    gains = raw.info.camera_whitebalance
    exposure = auto_exposure(raw_rgb, gains) if exposure_ev is None else 2.0**exposure_ev
    shot = Shot(wb_gains=gains, exposure=exposure)
    srgb = render(raw_rgb, camera, torch.Generator().manual_seed(seed), shot=shot)
    return srgb, raw_rgb, exposure


def write_srgb(path: Path, srgb: torch.Tensor, *, quality: int = 95) -> torch.Tensor:
    """Write a ``(3, H, W)`` sRGB as 8-bit JPEG (``quality``) or PNG by ``path``'s suffix; returns what was stored."""
    array = np.rint(srgb.detach().double().clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    suffix = path.suffix.lower()
    if suffix == ".png":
        write_image(path, array)
        return to_float(array)
    if suffix not in (".jpg", ".jpeg"):
        raise RawMambaError(f"sRGB output {path} must end in .jpg, .jpeg or .png")
    if not 1 <= quality <= 100:
        raise RawMambaError(f"JPEG quality must be in [1, 100], got {quality}")
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(array, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RawMambaError(f"cannot encode {path} as JPEG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())
    decoded = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return to_float(decoded)


@dataclass(frozen=True)
class Captured:
    """The files one capture wrote and their sizes in bytes (``raw_bytes`` is the source RAW file's)."""

    srgb: Path
    metadata: Path
    camera_info: Path
    raw_bytes: int
    srgb_bytes: int
    metadata_bytes: int

    def summary(self) -> str:
        """One line: RAW vs sRGB vs metadata sizes."""
        return (f"{self.srgb.stem}: RAW {self.raw_bytes / 1e6:.2f} MB -> sRGB {self.srgb_bytes / 1e3:.1f} KB "
                f"+ metadata {self.metadata_bytes / 1e3:.1f} KB + {self.camera_info.name}")


def capture_info_json(info: RawInfo, *, source: Path, renderer: str, downscale: int, size: tuple[int, int],
                      exposure: float, **files: str) -> dict:
    """The ``<stem>.camera.json`` document: format header, the ``RawInfo`` and how the sRGB was made."""
    return {"format": CAPTURE_FORMAT, "version": 1, "source": source.name, "renderer": renderer,
            "downscale": downscale, "height": size[0], "width": size[1], "exposure": exposure,
            "raw": info.to_json(), "files": files}


def load_capture_info(path: str | Path) -> RawInfo:
    """The ``RawInfo`` of a capture JSON (``capture`` writes it); other files raise ``RawMambaError`` naming it."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != CAPTURE_FORMAT or not isinstance(data.get("raw"), dict):
        raise RawMambaError(f"{path} is not a {CAPTURE_FORMAT} JSON file (written by rawmamba capture)")
    return RawInfo.from_json(data["raw"], source=str(path))


def capture(path: str | Path, out_dir: str | Path, *, renderer: str = LIBRAW, layout: HeaderlessLayout | None = None,
            downscale: int = 1, srgb_format: str = "jpg", quality: int = 95, exposure_ev: float | None = None,
            cell: int = 8, seed: int = 0, force: bool = False) -> Captured:
    """Capture one RAW file into ``out_dir``: ``<stem>.<srgb_format>``, ``<stem>.meta.npz``, ``<stem>.camera.json``.

    Args:
        path: camera RAW or DNG file (or a headerless dump with ``layout``).
        out_dir: output folder (created).
        renderer, downscale, exposure_ev, seed: as for ``render_pair``.
        layout: the layout of a headerless dump; None reads ``path`` with LibRaw.
        srgb_format: ``"jpg"`` or ``"png"``.
        quality: JPEG quality.
        cell: metadata grid cell (one RAW sample per ``cell x cell`` pixels); ``seed`` places the samples.
        force: overwrite existing outputs.
    """
    path, out_dir = Path(path), Path(out_dir)
    if srgb_format not in SRGB_FORMATS:
        raise RawMambaError(f"sRGB format must be one of {SRGB_FORMATS}, got {srgb_format!r}")
    srgb_path = out_dir / f"{path.stem}.{srgb_format}"
    meta_path, json_path = out_dir / f"{path.stem}.meta.npz", out_dir / f"{path.stem}.camera.json"
    check_free([srgb_path, meta_path, json_path], force=force)
    with open_raw(path, layout) as raw:  # everything is computed before the first file is written
        srgb, raw_rgb, exposure = render_pair(raw, renderer, downscale=downscale, exposure_ev=exposure_ev, seed=seed)
        info = raw.info
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = write_srgb(srgb_path, srgb, quality=quality)
    mask = grid_mask(*raw_rgb.shape[-2:], cell=cell, rng=torch.Generator().manual_seed(seed))
    save_metadata(meta_path, sample_image_metadata(stored, raw_rgb, mask), layout="raw-rgb", sampler="grid",
                  cell=cell, source=path.name, renderer=renderer, downscale=downscale)
    write_json(json_path, capture_info_json(info, source=path, renderer=renderer, downscale=downscale,
                                            size=tuple(raw_rgb.shape[-2:]), exposure=exposure,
                                            srgb=srgb_path.name, metadata=meta_path.name))
    return Captured(srgb_path, meta_path, json_path, path.stat().st_size, srgb_path.stat().st_size,
                    meta_path.stat().st_size)

