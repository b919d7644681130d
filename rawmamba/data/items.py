"""Building dataset items: per-item random generators and metadata (docs/CONVENTIONS.md, "rawmamba.data").

An item is a dict ``srgb (T, 3, H, W)``, ``raw (T, C_raw, H, W)``, ``meta_srgb (3, H, W)``,
``meta_raw (C_raw, H, W)``, ``meta_mask (1, H, W)`` (image task only), optional ``flow (T, 2, H, W)`` and
``name``. Image metadata is sampled from the item's own (already transformed) frame; video metadata is a
dense frame given by the dataset.
"""

from __future__ import annotations

import torch

from rawmamba.errors import RawMambaError
from rawmamba.metadata import Sampler, make_sampler, sample_image_metadata

__all__ = ["item_generator", "resolve_sampler", "add_image_metadata"]

_SEED_STRIDE = 1_000_003  # a prime, so that (seed, index) pairs of nearby seeds do not collide


def item_generator(seed: int | None, index: int) -> torch.Generator:
    """The random generator of item ``index``: seeded from ``(seed, index)``, or from OS entropy if ``seed`` is None.

    With an integer seed an item is a pure function of its index (evaluation, reproducible training);
    with None every access draws afresh (training augmentation). Global RNG state is never touched.
    """
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed((int(seed) * _SEED_STRIDE + int(index)) % (2**63))
    return generator


def resolve_sampler(sampler: Sampler | str) -> Sampler:
    """A ``rawmamba.metadata`` sampler, given as one or by name (``"grid"``, ``"random"``, ``"superpixel"``)."""
    if isinstance(sampler, str):
        return make_sampler(sampler)
    if not isinstance(sampler, Sampler):
        raise RawMambaError(f"sampler must be a name or a rawmamba.metadata Sampler, got {type(sampler).__name__}")
    return sampler


def add_image_metadata(item: dict, sampler: Sampler, rng: torch.Generator) -> dict:
    """``item`` (one frame) plus ``meta_srgb``, ``meta_raw``, ``meta_mask`` sampled from that frame with ``rng``."""
    if item["srgb"].shape[0] != 1:
        raise RawMambaError(f"image metadata is sampled from a single frame, got {item['srgb'].shape[0]} frames")
    srgb, raw = item["srgb"][0], item["raw"][0]
    meta = sample_image_metadata(srgb, raw, sampler(srgb, rng), check_values=False)
    return {**item, "meta_srgb": meta.srgb, "meta_raw": meta.raw, "meta_mask": meta.mask}
