"""numba, an optional dependency (``pip install rawmamba[fast]``): whether it imports, and its thread pool.

Users: the fused CPU selective scan (``rawmamba.ssm.backends.fused_cpu``) and the fast path of the joint
colour + position interpolation (``rawmamba.metadata.joint_interpolation``). Both import their kernel modules only
when :func:`numba_available` is True, so ``import rawmamba`` never needs numba.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Iterator

import torch


@functools.cache
def numba_available() -> bool:
    """True when numba imports; a numba built for another numpy fails to import and counts as missing."""
    try:
        importlib.import_module("numba")
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def numba_threads(threads: int) -> Iterator[None]:
    """Run numba's parallel kernels inside the block on ``threads`` threads (clamped to its pool size).

    numba's OpenMP threading layer changes the process-wide OpenMP thread count when its pool starts (measured:
    torch went from 1 to 2 threads), so torch's count is restored on leaving the block.
    """
    import numba

    torch_threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
