"""Explicit random-number plumbing for the ISP simulator: every draw comes from a caller's generator.

The simulator draws from a ``torch.Generator`` (the documented type). A ``numpy.random.Generator`` is
also accepted: a torch generator is seeded from one 63-bit integer drawn from it, so results are
deterministic for a given numpy seed too. Nothing here touches global RNG state.
"""

from __future__ import annotations

import numpy as np
import torch

from rawmamba.errors import RawMambaError

__all__ = ["as_generator", "uniform"]


def as_generator(rng: torch.Generator | np.random.Generator) -> torch.Generator:
    """``rng`` as a CPU ``torch.Generator`` (numpy generators seed a new one; torch ones pass through)."""
    if isinstance(rng, torch.Generator):
        return rng
    if isinstance(rng, np.random.Generator):
        return torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    raise RawMambaError(f"rng must be a torch.Generator or numpy.random.Generator, got {type(rng).__name__}")


def uniform(rng: torch.Generator, low: float, high: float) -> float:
    """One float drawn uniformly from ``[low, high)``."""
    return low + (high - low) * float(torch.rand((), generator=rng, dtype=torch.float64))
