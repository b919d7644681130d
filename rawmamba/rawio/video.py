"""RAW frame sequences: listing RAW files, and capturing a sequence as video metadata (the paper's video task).

For video the metadata is the first frame's (sRGB, RAW) pair (paper Sec. 3): ``capture_sequence`` renders
every RAW frame to an sRGB frame (our renderer keeps the first frame's exposure for all frames, so
the video does not flicker; LibRaw brightens each frame on its own) and keeps the first frame's RAW:

    <out>/frames/<stem>.png     sRGB frames, in the order given (sorted by name for a folder)
    <out>/first_raw.tiff        the first frame's raw-RGB, 16-bit ``round(x * 65535)``: ``--first-raw``
    <out>/capture.json          the first frame's ``RawInfo`` (``rawmamba.rawio.capture.CAPTURE_FORMAT``)

which is what ``rawmamba derender <out>/frames --first-raw <out>/first_raw.tiff --out RAW_DIR
[--frame-format dng --camera-info <out>/capture.json]`` reads. sRGB video files and frame folders are read
by ``rawmamba.infer.iter_frames`` (OpenCV); de-rendered frames are written as 16-bit TIFFs or DNGs by
``rawmamba derender`` (``rawmamba.rawio.dng.write_dng``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from rawmamba.data.io import write_image, write_json
from rawmamba.data.writers import check_free, quantize
from rawmamba.errors import RawMambaError
from rawmamba.rawio.capture import LIBRAW, capture_info_json, render_pair, write_srgb
from rawmamba.rawio.read import HeaderlessLayout, open_raw

__all__ = ["RAW_SUFFIXES", "capture_sequence", "raw_files"]

# File endings of camera RAW formats LibRaw reads (plus ``.raw`` dumps), matched case-insensitively.
RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
                ".pef", ".srw", ".3fr", ".iiq", ".erf", ".kdc", ".mef", ".mos", ".raw", ".rwl", ".gpr")


def raw_files(sources: Iterable[str | Path]) -> list[Path]:
    """RAW files from files and folders: a folder gives its RAW files sorted by name; files are kept as given."""
    found: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            inside = sorted(p for p in source.iterdir()
                            if p.is_file() and p.suffix.lower() in RAW_SUFFIXES and not p.name.startswith("."))
            if not inside:
                raise RawMambaError(f"folder {source} holds no RAW files ({', '.join(RAW_SUFFIXES)})")
            found += inside
        elif source.is_file():
            found.append(source)
        else:
            raise RawMambaError(f"RAW file {source} does not exist")
    if not found:
        raise RawMambaError("no RAW files given")
    return found


def capture_sequence(paths: Iterable[str | Path], out_dir: str | Path, *, renderer: str = LIBRAW,
                     layout: HeaderlessLayout | None = None, downscale: int = 1, exposure_ev: float | None = None,
                     seed: int = 0, force: bool = False) -> list[Path]:
    """Capture RAW frames as a video: sRGB frames, the first frame's RAW and its camera JSON (module docstring).

    Args:
        paths: RAW frame files in playback order (or folders, see ``raw_files``).
        out_dir: output folder.
        renderer, layout, downscale, exposure_ev, seed: as for ``rawmamba.rawio.capture.capture``; with our
            renderer the first frame's exposure is used for every frame.
        force: overwrite existing outputs.
    Returns:
        The paths written, first RAW and JSON last.
    """
    paths, out_dir = raw_files(paths), Path(out_dir)
    frames = [out_dir / "frames" / f"{p.stem}.png" for p in paths]
    if len(set(frames)) != len(frames):
        raise RawMambaError("RAW frames must have distinct file names (their sRGB frames are named after them)")
    first_raw, json_path = out_dir / "first_raw.tiff", out_dir / "capture.json"
    check_free([*frames, first_raw, json_path], force=force)
    size = None
    for index, (path, frame) in enumerate(zip(paths, frames, strict=True)):
        with open_raw(path, layout) as raw:
            srgb, raw_rgb, gain = render_pair(raw, renderer, downscale=downscale, exposure_ev=exposure_ev, seed=seed)
            info = raw.info
        if size is not None and raw_rgb.shape[-2:] != size:
            raise RawMambaError(f"RAW frame {path} gives {tuple(raw_rgb.shape[-2:])} pixels, the first frame {size}")
        write_srgb(frame, srgb)
        if index == 0:
            size, first_info, first_gain = raw_rgb.shape[-2:], info, gain
            exposure_ev = math.log2(gain) if renderer.lower() != LIBRAW else exposure_ev
            write_image(first_raw, quantize(raw_rgb, 65535))
    write_json(json_path, capture_info_json(first_info, source=paths[0], renderer=renderer, downscale=downscale,
                                            size=tuple(size), exposure=first_gain, first_raw=first_raw.name,
                                            frames="frames"))
    return [*frames, first_raw, json_path]
