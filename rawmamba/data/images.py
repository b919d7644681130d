"""Image-pair datasets: the CAM layout and a generic folder of pairs.

CAM layout (NUS images of three cameras, as used by CAM and RAWMamba)::

    <root>/<camera>/<split>/raw/<name>.{png,tif,tiff}     3-channel demosaiced raw-RGB, 16-bit, / 65535
    <root>/<camera>/<split>/sRGB/<name>.{png,tif,tiff}    8-bit PNG or 16-bit TIFF, / dtype max

Camera folders are named either ``samsung``, ``sony``, ``olympus`` or ``SamsungNX2000``, ``SonyA57``,
``OlympusEPL6`` (both public copies); any other folder holding ``<split>/sRGB`` (e.g. written by
``rawmamba data synth``) is a camera too.

Generic layout: ``<root>/srgb/`` and ``<root>/raw/`` (any case) with files matched by stem; RAW is a
3-channel raw-RGB image, or a single-channel Bayer mosaic that is packed to 4 channels (R, Gr, Gb, B)
with the sRGB resized to the same half resolution.

Every item is one frame (T = 1) in the dataset-item format of docs/CONVENTIONS.md, with image metadata
sampled from the (transformed) pair by a ``rawmamba.metadata`` sampler using a per-item seeded
generator: with an integer ``seed`` the same index always gives the same crop and mask (evaluation);
with ``seed=None`` each access draws afresh (training).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from rawmamba.data.io import IMAGE_SUFFIXES, read_image, to_float, to_landscape
from rawmamba.data.items import add_image_metadata, item_generator, resolve_sampler
from rawmamba.errors import RawMambaError
from rawmamba.isp.cfa import CFA, as_cfa, pack
from rawmamba.metadata import Sampler

__all__ = ["CamDataset", "PairFolderDataset", "CAM_CAMERAS", "match_pairs", "find_subdir"]

# Canonical CAM camera name -> folder names used by the public copies of the dataset.
CAM_CAMERAS: dict[str, tuple[str, ...]] = {
    "samsung": ("samsung", "SamsungNX2000"),
    "sony": ("sony", "SonyA57"),
    "olympus": ("olympus", "OlympusEPL6"),
}

Transform = Callable[[dict, torch.Generator], dict]


def find_subdir(parent: Path, name: str) -> Path | None:
    """The sub-folder of ``parent`` called ``name``, compared case-insensitively; None if absent."""
    exact = parent / name
    if exact.is_dir():
        return exact
    if not parent.is_dir():
        return None
    return next((p for p in sorted(parent.iterdir()) if p.is_dir() and p.name.lower() == name.lower()), None)


def _images_by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.stem in found:
                raise RawMambaError(f"two images with stem {path.stem!r} in {folder}: "
                                    f"{found[path.stem].name}, {path.name}")
            found[path.stem] = path
    return found


def match_pairs(srgb_dir: Path, raw_dir: Path) -> list[tuple[str, Path, Path]]:
    """``(stem, srgb_path, raw_path)`` for every sRGB image, sorted by stem.

    Raises ``RawMambaError`` naming the file when an sRGB image has no RAW image of the same stem, and
    naming the folder when it holds no images. RAW images without an sRGB are ignored.
    """
    srgb = _images_by_stem(srgb_dir)
    if not srgb:
        raise RawMambaError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {srgb_dir}")
    raw = _images_by_stem(raw_dir) if raw_dir.is_dir() else {}
    pairs = []
    for stem, path in srgb.items():
        if stem not in raw:
            raise RawMambaError(f"sRGB image {path} has no RAW image {raw_dir / stem}.{{png,tif,tiff}}")
        pairs.append((stem, path, raw[stem]))
    return pairs


def _load_rgb(path: Path) -> torch.Tensor:
    image = read_image(path)
    if image.ndim != 3 or image.shape[2] != 3:
        raise RawMambaError(f"image {path} must have 3 colour channels, got shape {image.shape}")
    return to_float(image)


class _PairDataset(Dataset):
    """Shared item building: load a pair, transform it, sample metadata."""

    def __init__(self, pairs: list[tuple[str, Path, Path]], *, sampler: Sampler | str,
                 transform: Transform | None, seed: int | None) -> None:
        self.pairs = pairs
        self.sampler = resolve_sampler(sampler)
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.pairs)

    def load_pair(self, index: int) -> tuple[str, torch.Tensor, torch.Tensor]:
        """``(name, srgb (3, H, W), raw (C_raw, H, W))`` of pair ``index``, untransformed, no metadata."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        name, srgb, raw = self.load_pair(index)
        rng = item_generator(self.seed, index)
        item = {"srgb": srgb[None], "raw": raw[None], "name": name}
        if self.transform is not None:
            item = self.transform(item, rng)
        return add_image_metadata(item, self.sampler, rng)


class CamDataset(_PairDataset):
    """The CAM image dataset (or anything written in its layout), one item per image.

    Args:
        root: folder holding the camera folders.
        split: ``"train"``, ``"val"`` or ``"test"`` (any folder name).
        cameras: camera names to read (``"samsung"``/``"SamsungNX2000"`` style, or any folder name);
            ``None`` reads every camera folder that has ``<split>/sRGB``.
        landscape: rotate portrait pairs by 90 degrees counter-clockwise (the CAM convention).
        sampler: a ``rawmamba.metadata`` sampler or its name; draws the metadata mask (default ``"grid"``:
            one pixel per 8x8 cell, the paper's 1.5%, at a random position in the cell).
        transform: ``transform(item, rng)`` applied before the metadata is sampled (e.g. ``RandomCropFlip``).
        seed: base seed of the per-item generators; ``None`` for fresh randomness on every access.

    Item names are ``<camera folder>/<stem>``.
    """

    def __init__(self, root: str | Path, split: str = "test", *, cameras: Sequence[str] | None = None,
                 landscape: bool = True, sampler: Sampler | str = "grid",
                 transform: Transform | None = None, seed: int | None = 0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise RawMambaError(f"CAM dataset folder {self.root} does not exist")
        self.split, self.landscape = split, landscape
        folders = self._camera_folders(cameras)
        pairs = []
        for folder in folders:
            split_dir = folder / split
            srgb_dir = find_subdir(split_dir, "sRGB")
            if srgb_dir is None:
                raise RawMambaError(f"camera folder {folder} has no {split}/sRGB folder")
            raw_dir = find_subdir(split_dir, "raw") or split_dir / "raw"
            pairs += [(f"{folder.name}/{stem}", s, r) for stem, s, r in match_pairs(srgb_dir, raw_dir)]
        super().__init__(pairs, sampler=sampler, transform=transform, seed=seed)

    def _camera_folders(self, cameras: Sequence[str] | None) -> list[Path]:
        if cameras is None:
            folders = [p for p in sorted(self.root.iterdir()) if p.is_dir() and find_subdir(p / self.split, "sRGB")]
            if not folders:
                raise RawMambaError(f"no camera folders with {self.split}/sRGB images in {self.root}")
            return folders
        folders = []
        for camera in cameras:
            aliases = next((names for key, names in CAM_CAMERAS.items()
                            if camera.lower() in (key, *(n.lower() for n in names))), (camera,))
            folder = next((f for f in (find_subdir(self.root, a) for a in aliases) if f is not None), None)
            if folder is None:
                raise RawMambaError(f"camera {camera!r}: none of the folders {list(aliases)} exists in {self.root}")
            folders.append(folder)
        return folders

    def load_pair(self, index: int) -> tuple[str, torch.Tensor, torch.Tensor]:
        name, srgb_path, raw_path = self.pairs[index]
        srgb, raw = _load_rgb(srgb_path), _load_rgb(raw_path)
        if srgb.shape != raw.shape:
            raise RawMambaError(f"sRGB {srgb_path} is {tuple(srgb.shape[1:])} but RAW {raw_path} is "
                                f"{tuple(raw.shape[1:])}")
        if self.landscape and raw.shape[0] == 3:
            srgb, raw = to_landscape(srgb), to_landscape(raw)
        return name, srgb, raw


class PairFolderDataset(_PairDataset):
    """A folder ``<root>/{srgb,raw}/`` of image pairs matched by file stem, one item per pair.

    Args:
        root: the folder holding ``srgb/`` and ``raw/`` (names compared case-insensitively).
        cfa: Bayer pattern of single-channel RAW mosaics, which are packed to R, Gr, Gb, B at half
            resolution (the sRGB is then resized to half with bilinear interpolation, a 2x2 mean).
        white_level: divisor of RAW values; ``None`` uses the dtype maximum (65535 for 16-bit).
        landscape: rotate portrait raw-RGB pairs to landscape; Bayer pairs are never rotated (a quarter
            turn would change the pattern).
        sampler, transform, seed: as for ``CamDataset``.

    Item names are file stems.
    """

    def __init__(self, root: str | Path, *, cfa: CFA | str = CFA.RGGB, white_level: float | None = None,
                 landscape: bool = False, sampler: Sampler | str = "grid",
                 transform: Transform | None = None, seed: int | None = 0) -> None:
        self.root = Path(root)
        srgb_dir, raw_dir = find_subdir(self.root, "srgb"), find_subdir(self.root, "raw")
        if srgb_dir is None or raw_dir is None:
            raise RawMambaError(f"pair folder {self.root} must contain srgb/ and raw/ sub-folders")
        self.cfa, self.white_level, self.landscape = as_cfa(cfa), white_level, landscape
        super().__init__(match_pairs(srgb_dir, raw_dir), sampler=sampler, transform=transform, seed=seed)

    def load_pair(self, index: int) -> tuple[str, torch.Tensor, torch.Tensor]:
        name, srgb_path, raw_path = self.pairs[index]
        srgb = _load_rgb(srgb_path)
        raw_image = read_image(raw_path)
        raw = to_float(raw_image, max_value=self.white_level)
        if raw.shape[-2:] != srgb.shape[-2:]:
            raise RawMambaError(f"sRGB {srgb_path} is {tuple(srgb.shape[1:])} but RAW {raw_path} is "
                                f"{tuple(raw.shape[1:])}")
        if raw.shape[0] == 1:
            if raw.shape[-2] % 2 or raw.shape[-1] % 2:
                raise RawMambaError(f"Bayer RAW {raw_path} must have even height and width, got {tuple(raw.shape[1:])}")
            raw = pack(raw, self.cfa)
            srgb = F.interpolate(srgb[None], scale_factor=0.5, mode="bilinear", align_corners=False)[0]
        elif raw.shape[0] != 3:
            raise RawMambaError(f"RAW {raw_path} must have 1 (Bayer) or 3 (raw-RGB) channels, got {raw.shape[0]}")
        if self.landscape and raw.shape[0] == 3:
            srgb, raw = to_landscape(srgb), to_landscape(raw)
        return name, srgb, raw
