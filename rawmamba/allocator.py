"""CPU heap setting for large inputs: reuse freed memory instead of fresh pages (glibc ``mallopt``).

By default glibc serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with its own
``mmap`` and returns it to the kernel when freed, so each large temporary tensor of a forward pass costs one page
fault (and the kernel's zeroing) per 4 KiB page touched. On big inputs that is most of the network's activations,
and it makes the cost per pixel grow with the image: measured on ``rawmamba_tiny``, 1 thread, 1024^2: 4.9 s per
forward by default, 3.3 s with freed memory kept for reuse (256^2: 0.21 s and 0.20 s).
:func:`reuse_freed_memory` turns ``mmap`` allocation off and raises the trim threshold to 2 GiB, so freed blocks
stay in the process and serve the next tensors. The cost: freed memory is not handed back to the system, and the
heap fragments, so the peak resident memory rises (measured, 2048^2 forward: +4.6 GiB instead of +2.6 GiB).

Equivalent without code: ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>`` in the environment, or a
caching allocator (jemalloc, tcmalloc) through ``LD_PRELOAD``.

A second setting for big inputs, PyTorch's own: ``THP_MEM_ALLOC_ENABLE=1`` in the environment (PyTorch reads it
once, at its first CPU allocation) aligns tensors of 2 MiB and more to 2 MiB and asks Linux for transparent huge
pages: 512 times fewer page faults and TLB entries. Measured on ``rawmamba_tiny``, 1 thread, 2048^2, with
:func:`reuse_freed_memory`: 9.9-10.4 s per forward with it, 10.0-15.8 s without (12.96 s against 10.36 s in
back-to-back runs), depending on the machine's memory state; the cost is resident memory (peak +5.8 GiB
instead of +4.1 GiB in those runs).
"""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# mallopt takes a C int: keep up to 2 GiB of free memory at the top of the heap before trimming.
TRIM_THRESHOLD = 2**31 - 1


def reuse_freed_memory() -> bool:
    """Keep freed memory in the process for reuse (process-wide, from the next allocation on).

    Returns:
        True when glibc accepted both settings; False on a C library without ``mallopt`` (musl, macOS,
        Windows), where nothing changes.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
