"""The work of ``rawmamba derender`` (:mod:`rawmamba.infer_cli` holds its arguments and help): read the sRGB
image or frames and the metadata, run the network, write the RAW files (TIFF, .npy, DNG) without overwriting."""

from __future__ import annotations

import sys
from dataclasses import replace
from itertools import chain
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from rawmamba.data.io import read_image, read_npy, to_float, write_image, write_npy
from rawmamba.errors import RawMambaError
from rawmamba.infer import (
    derender_stream,
    derender_tiled,
    frame_names,
    iter_frames,
    precision_context,
    resolve_device,
)
from rawmamba.isp.cfa import CFA, as_cfa, pack, unpack
from rawmamba.metadata import Metadata, load_metadata, read_metadata_info

RAW_SUFFIXES = (".tif", ".tiff", ".npy", ".dng")
LARGE_IMAGE = 4_000_000  # pixels above which an untiled run prints a --tile hint


def _half(x: torch.Tensor) -> torch.Tensor:
    """``(*, 3, H, W)`` sRGB to the packed RAW's half resolution: bilinear, i.e. the mean of each 2x2 block."""
    return F.interpolate(x.reshape(-1, *x.shape[-3:]), scale_factor=0.5, mode="bilinear",
                         align_corners=False).reshape(*x.shape[:-2], x.shape[-2] // 2, x.shape[-1] // 2)


def _check_out(path: Path, force: bool) -> None:
    if path.suffix.lower() not in RAW_SUFFIXES:
        raise RawMambaError(f"--out {path} must end in .tiff, .tif, .npy or .dng")
    if path.exists() and not force:
        raise RawMambaError(f"{path} already exists; use --force to overwrite")


def _dng_info(args, cfa: CFA | None):
    """The DNG tags' ``RawInfo``: ``--camera-info`` (a capture JSON), else defaults with ``cfa`` and --white-level."""
    from rawmamba.rawio.capture import load_capture_info
    from rawmamba.rawio.dng import DEFAULT_INFO

    if args.camera_info:
        return load_capture_info(args.camera_info)
    return replace(DEFAULT_INFO, cfa=cfa or DEFAULT_INFO.cfa, white_level=args.white_level)


def write_raw(path: Path, raw: torch.Tensor, *, cfa: CFA | None, white_level: float, dng_info=None) -> None:
    """Write ``(C_raw, H, W)`` RAW in [0, 1] atomically: a 16-bit TIFF, a float32 ``.npy`` (channels last) or a DNG.

    Packed Bayer (``C_raw = 4``) is unpacked with ``cfa`` to the full-resolution ``(H, W)`` mosaic first
    (for a DNG, with ``dng_info.cfa``: a ``rawmamba.rawio.RawInfo`` giving the DNG's tags).
    """
    if path.suffix.lower() == ".dng":
        from rawmamba.rawio.dng import write_dng

        write_dng(path, raw.detach().float().cpu(), dng_info)
        return
    image = unpack(raw, cfa) if raw.shape[0] == 4 else raw
    array = image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
    array = array[..., 0] if array.shape[2] == 1 else array
    if path.suffix.lower() == ".npy":
        write_npy(path, np.ascontiguousarray(array, dtype=np.float32))
    else:
        if not 0 < white_level <= 65535:
            raise RawMambaError(f"--white-level must be in (0, 65535] for 16-bit TIFFs, got {white_level}")
        write_image(path, np.rint(array.astype(np.float64) * white_level).astype(np.uint16))


def read_raw(path: Path, *, white_level: float) -> torch.Tensor:
    """A RAW file as ``(1, H, W)`` mosaic or ``(3, H, W)`` raw-RGB in [0, 1] (16-bit image or ``.npy``)."""
    if path.suffix.lower() == ".npy":
        array = read_npy(path)
        if np.issubdtype(array.dtype, np.floating):
            tensor = torch.from_numpy(array.astype(np.float32))
            tensor = tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1) if tensor.dim() == 3 else tensor
        elif array.dtype in (np.uint8, np.uint16):
            tensor = to_float(array, max_value=white_level) if array.ndim in (2, 3) else torch.empty(0)
        else:
            raise RawMambaError(f"RAW file {path} holds {array.dtype} values; expected float in [0, 1] or uint16")
    else:
        array = read_image(path)
        if array.dtype != np.uint16:
            raise RawMambaError(f"RAW file {path} must hold 16-bit values, got {array.dtype}")
        tensor = to_float(array, max_value=white_level)
    if tensor.dim() != 3 or tensor.shape[0] not in (1, 3):
        raise RawMambaError(f"RAW file {path} must be an (H, W) Bayer mosaic or (H, W, 3) raw-RGB, "
                            f"got shape {tuple(array.shape)}")
    if not torch.isfinite(tensor).all() or tensor.min() < 0 or tensor.max() > 1:
        raise RawMambaError(f"RAW file {path} has values outside [0, 1] after dividing by --white-level "
                            f"{white_level:g}")
    return tensor


def _load_method(args, device: torch.device):
    from rawmamba.inference import NetworkMethod, bundled_checkpoint

    checkpoint = args.checkpoint or bundled_checkpoint()
    return NetworkMethod.from_checkpoint(checkpoint, device=device, name=Path(checkpoint).stem,
                                         sample_refinement=args.refinement)


def _derender_image(args, device: torch.device) -> int:
    source, out = Path(args.input), Path(args.out)
    _check_out(out, args.force)
    image = read_image(source)
    if image.ndim != 3 or image.shape[2] != 3:
        raise RawMambaError(f"sRGB image {source} must have 3 colour channels, got shape {image.shape}")
    srgb = to_float(image)
    height, width = srgb.shape[-2:]
    header = read_metadata_info(args.metadata)
    packed = header.get("raw_channels") == 4
    cfa = as_cfa(str(header.get("layout", "packed-RGGB")).removeprefix("packed-")) if packed else None
    if packed:
        if height % 2 or width % 2:
            raise RawMambaError(f"sRGB image {source} is {height}x{width}; packed Bayer metadata needs even sides")
        srgb = _half(srgb)
    meta = load_metadata(args.metadata, expect_size=tuple(srgb.shape[-2:]))
    if args.tile <= 0 and srgb.shape[-2] * srgb.shape[-1] > LARGE_IMAGE:
        print(f"note: {source} is large; --tile 512 bounds the memory", file=sys.stderr)
    method = _load_method(args, device)
    with precision_context(device, args.precision):
        raw = derender_tiled(method, srgb[None], meta, args.tile, args.overlap, blend=args.blend, progress=True)[0]
    write_raw(out, raw, cfa=cfa, white_level=args.white_level, dng_info=_dng_info(args, cfa))
    print(f"wrote {out}")
    return 0


def _derender_video(args, device: torch.device) -> int:
    source, out_dir = Path(args.input), Path(args.out)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not args.force:
        raise RawMambaError(f"output folder {out_dir} already exists and is not empty; use --force to overwrite")
    names = frame_names(source) if source.exists() else None
    frames = iter_frames(source)
    first = next(frames)
    raw0 = read_raw(Path(args.first_raw), white_level=args.white_level)
    if raw0.shape[-2:] != first.shape[-2:]:
        raise RawMambaError(f"first RAW {args.first_raw} is {tuple(raw0.shape[-2:])}, the first sRGB frame of "
                            f"{source} is {tuple(first.shape[-2:])}")
    cfa = as_cfa(args.cfa)
    prepare = (lambda x: x) if raw0.shape[0] == 3 else _half
    if raw0.shape[0] == 1:
        if raw0.shape[-2] % 2 or raw0.shape[-1] % 2:
            raise RawMambaError(f"Bayer RAW {args.first_raw} must have even height and width")
        raw0 = pack(raw0, cfa)
    meta = Metadata(prepare(first), raw0)
    method = _load_method(args, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    stream = derender_stream(method, (prepare(f) for f in chain([first], frames)), meta, window=args.window,
                             tile=args.tile, overlap=args.overlap, blend=args.blend)
    suffix, dng_info = f".{args.frame_format}", _dng_info(args, cfa)
    count = 0
    with precision_context(device, args.precision):
        for index, raw in enumerate(tqdm(stream, total=len(names) if names else None, desc="frames",
                                         dynamic_ncols=True)):
            stem = Path(names[index]).stem if names else f"{index:05d}"
            write_raw(out_dir / f"{stem}{suffix}", raw, cfa=cfa, white_level=args.white_level, dng_info=dng_info)
            count += 1
    print(f"wrote {count} RAW frames to {out_dir}")
    return 0


def run(args) -> int:
    """``rawmamba derender`` with the parsed ``args`` (see :mod:`rawmamba.infer_cli`)."""
    if (args.metadata is None) == (args.first_raw is None):
        raise RawMambaError("give --metadata META.npz (image) or --first-raw RAW0 (video), exactly one")
    if args.tile > 0 and not 0 <= args.overlap < args.tile:
        raise RawMambaError(f"--overlap must satisfy 0 <= overlap < --tile, got {args.overlap} and {args.tile}")
    device = resolve_device(args.device)
    with torch.no_grad():  # scoped: the command also runs in-process (tests, notebooks)
        return _derender_image(args, device) if args.metadata else _derender_video(args, device)
