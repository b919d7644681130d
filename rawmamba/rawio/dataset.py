"""Training data from the user's own camera: a folder of RAW files to a CAM-layout set of (sRGB, RAW) pairs.

Each RAW file becomes one pair, made as the CAM data were made from the NUS images (paper Sec. 4.1):
bilinear-demosaiced raw-RGB, black-subtracted and normalised, downscaled ``downscale`` times (area);
the sRGB is LibRaw's rendering or one of our camera profiles (``rawmamba.rawio.capture.render_pair``).
Pairs go to ``<out>/<camera>/<split>/{sRGB,raw}/<stem>.png`` (8-bit sRGB, 16-bit raw-RGB;
``rawmamba.data.writers.write_cam_pair``), where ``<camera>`` is the file's camera model (letters, digits
and ``_``) unless ``camera_folder`` is given, so ``rawmamba.data.CamDataset`` and ``rawmamba train`` read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from rawmamba.data.writers import cam_pair_paths, check_free, write_cam_pair
from rawmamba.rawio.capture import LIBRAW, render_pair
from rawmamba.rawio.read import HeaderlessLayout, open_raw
from rawmamba.rawio.video import raw_files

__all__ = ["camera_folder_name", "dataset_from_raw"]


def camera_folder_name(camera: str) -> str:
    """A camera model as a folder name: runs of characters other than letters and digits become ``_``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", camera).strip("_") or "camera"


def dataset_from_raw(sources: Iterable[str | Path], out: str | Path, *, renderer: str = LIBRAW,
                     layout: HeaderlessLayout | None = None, downscale: int = 4, split: str = "train",
                     camera_folder: str | None = None, exposure_ev: float | None = None, seed: int = 0,
                     force: bool = False, progress: bool = True) -> list[Path]:
    """Write one CAM-layout pair per RAW file (folders are searched for RAW files); returns the paths written.

    Args:
        sources: RAW files and/or folders of them.
        out: dataset root.
        renderer: ``"libraw"`` or a camera profile name (``render_pair``).
        layout: layout of headerless dumps (then every file is read as one).
        downscale: area downscaling (4 as for the CAM data).
        split: split folder.
        camera_folder: camera folder name; None uses each file's camera model.
        exposure_ev, seed: our renderer's exposure (None: automatic per file) and seed.
        force: overwrite existing pairs.
    """
    written: list[Path] = []
    for path in tqdm(raw_files(sources), desc="RAW files", disable=not progress, dynamic_ncols=True):
        with open_raw(path, layout) as raw:
            srgb, raw_rgb, _ = render_pair(raw, renderer, downscale=downscale, exposure_ev=exposure_ev, seed=seed)
            camera = camera_folder or camera_folder_name(raw.info.camera)
        srgb_path, raw_path = cam_pair_paths(out, camera, split, path.stem)
        check_free([srgb_path, raw_path], force=force)
        write_cam_pair(srgb_path, raw_path, srgb, raw_rgb)
        written += [srgb_path, raw_path]
    return written
