"""Contact sheets: look at a dataset folder (CAM, RVD-Part2 or pair-folder layout) as one PNG.

Each row is one image (or the first frame of one video): the sRGB on the left, the RAW on the right,
under a label with the item's name. RAW is made visible with a single gain and a gamma:
``(gain * raw) ** (1 / gamma)``, the gain mapping the ``percentile``-th percentile of the RAW to 1
(no white balance, so RAW keeps its typical green cast). Packed Bayer RAW is shown as
``(R, (Gr + Gb) / 2, B)`` at its half resolution. Images are fitted into fixed cells, so the sheet is
``2 * cell_width`` wide and ``rows * (label_height + cell_height)`` high.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from rawmamba.data.images import CamDataset, PairFolderDataset, find_subdir
from rawmamba.data.io import atomic_path
from rawmamba.data.rvd import RVDDataset
from rawmamba.errors import RawMambaError

__all__ = ["detect_layout", "visualize_raw", "contact_sheet", "write_contact_sheet", "sheet_size", "LAYOUTS"]

LAYOUTS = ("cam", "rvd", "folder")
_SPLITS = ("test", "val", "train")


def detect_layout(root: str | Path, split: str | None = None) -> tuple[str, str | None]:
    """``(layout, split)`` of a dataset folder: ``"rvd"`` (``Part2/<split>/data.json``), ``"cam"``
    (``<camera>/<split>/sRGB``) or ``"folder"`` (``srgb/`` and ``raw/``). With ``split=None`` the first of
    test, val, train that exists is used. Raises ``RawMambaError`` naming ``root`` if none matches."""
    root = Path(root)
    if not root.is_dir():
        raise RawMambaError(f"dataset folder {root} does not exist")
    splits = (split,) if split else _SPLITS
    for s in splits:
        if (root / "Part2" / s / "data.json").is_file() or (root / s / "data.json").is_file():
            return "rvd", s
    for s in splits:
        if any(p.is_dir() and find_subdir(p / s, "sRGB") for p in root.iterdir()):
            return "cam", s
    if find_subdir(root, "srgb") and find_subdir(root, "raw"):
        return "folder", None
    raise RawMambaError(f"{root} is not a CAM (<camera>/<split>/sRGB), RVD-Part2 (Part2/<split>/data.json) "
                        "or pair (srgb/, raw/) dataset folder")


def visualize_raw(raw: torch.Tensor, *, percentile: float = 99.0, gamma: float = 2.2) -> torch.Tensor:
    """``(3 or 4, H, W)`` RAW to a viewable ``(3, H, W)`` image in [0, 1]: gain to the percentile, then gamma."""
    if raw.shape[0] == 4:
        raw = torch.stack([raw[0], 0.5 * (raw[1] + raw[2]), raw[3]])
    elif raw.shape[0] != 3:
        raise RawMambaError(f"RAW must have 3 or 4 channels to show, got {raw.shape[0]}")
    level = float(torch.quantile(raw.flatten().float()[:: max(1, raw.numel() // 100_000)], percentile / 100))
    gain = 1.0 / max(level, 1e-4)
    return (raw * gain).clamp(0, 1) ** (1 / gamma)


def sheet_size(rows: int, *, cell_height: int = 128, cell_width: int = 192, label_height: int = 16
               ) -> tuple[int, int]:
    """``(width, height)`` in pixels of a contact sheet with ``rows`` rows."""
    return 2 * cell_width, rows * (label_height + cell_height)


def _fit(image: torch.Tensor, width: int, height: int) -> Image.Image:
    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    picture = Image.fromarray(array)
    picture.thumbnail((width, height), Image.Resampling.BILINEAR)
    cell = Image.new("RGB", (width, height), (32, 32, 32))
    cell.paste(picture, ((width - picture.width) // 2, (height - picture.height) // 2))
    return cell


def _rows(root: Path, layout: str, split: str | None, limit: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    if layout == "rvd":
        dataset = RVDDataset(root, split)
        rows = []
        for video, ids in dataset.videos[:limit]:
            srgb, raw = dataset.load_frame(video, ids[0])
            rows.append((f"{video} ({len(ids)} frames)", srgb, raw))
        return rows
    pairs = CamDataset(root, split) if layout == "cam" else PairFolderDataset(root)
    return [pairs.load_pair(i) for i in range(min(limit, len(pairs)))]


def contact_sheet(root: str | Path, *, split: str | None = None, rows: int = 8, cell_height: int = 128,
                  cell_width: int = 192, label_height: int = 16, percentile: float = 99.0,
                  gamma: float = 2.2) -> Image.Image:
    """A contact sheet of the first ``rows`` items of the dataset at ``root`` (layout auto-detected).

    Args:
        root: dataset folder (CAM, RVD-Part2 or pair layout; see ``detect_layout``).
        split: split to show; ``None``: the first of test, val, train present.
        rows: largest number of rows (items) shown.
        cell_height, cell_width: size of each picture cell; pictures are scaled to fit, centred.
        label_height: height of the name band above each row (0: no labels).
        percentile, gamma: RAW visualisation (``visualize_raw``).
    """
    if rows < 1 or min(cell_height, cell_width) < 1 or label_height < 0:
        raise RawMambaError(f"rows, cell_height, cell_width must be positive (got {rows}, {cell_height}, "
                            f"{cell_width}) and label_height >= 0 (got {label_height})")
    root = Path(root)
    layout, split = detect_layout(root, split)
    items = _rows(root, layout, split, rows)
    sheet = Image.new("RGB", sheet_size(len(items), cell_height=cell_height, cell_width=cell_width,
                                        label_height=label_height), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, (name, srgb, raw) in enumerate(items):
        top = r * (label_height + cell_height)
        if label_height:
            draw.text((4, top + 2), f"{name}   sRGB | RAW (C={raw.shape[0]})", fill=(230, 230, 230), font=font)
        sheet.paste(_fit(srgb, cell_width, cell_height), (0, top + label_height))
        shown = visualize_raw(raw, percentile=percentile, gamma=gamma)
        sheet.paste(_fit(shown, cell_width, cell_height), (cell_width, top + label_height))
    return sheet


def write_contact_sheet(root: str | Path, out: str | Path, **options) -> Path:
    """Write ``contact_sheet(root, **options)`` to the PNG ``out`` atomically; returns ``out``."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise RawMambaError(f"contact sheet {out} must be a .png file")
    sheet = contact_sheet(root, **options)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
