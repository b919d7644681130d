"""CPU memory settings for large inputs: transparent huge pages (PyTorch) and reuse of freed memory (glibc).

Every large temporary tensor of a forward pass is fresh memory from the kernel, and touching it costs page faults
(and the kernel's zeroing): one per 4 KiB page by default. Two settings cut that cost:

- :func:`use_huge_pages` sets PyTorch's own switch ``THP_MEM_ALLOC_ENABLE=1``: CPU tensors of 2 MiB and more are
  aligned to 2 MiB and Linux is asked (``madvise``) for transparent huge pages, 512 times fewer faults and TLB
  entries. PyTorch reads the variable once, at its first CPU allocation, so it must be set before any tensor
  exists. The ``rawmamba`` command line turns it on (unless the environment sets it). It costs no memory:
  measured on ``rawmamba_tiny``, 2 threads, 1024^2 image / 5 frames of 1440x640: 3.51 s / 17.8 s per forward
  without it, 1.66 s / 12.2 s with it, peak resident memory +0.86 / +3.1 GiB and +0.94 / +3.2 GiB.
- :func:`reuse_freed_memory`: by default glibc serves every allocation above its mmap threshold (128 KiB, adapting
  up to 32 MiB) with its own ``mmap`` and returns it to the kernel when freed; this turns ``mmap`` allocation off
  and raises the trim threshold to 2 GiB, so freed blocks stay in the process and serve the next tensors. The cost:
  freed memory is not handed back to the system, and the heap fragments, so the peak resident memory rises. With
  both settings the same cases take 1.30 s / 9.3 s, at peak +2.6 / +5.6 to +10.3 GiB (it varies from run to
  run); with this one alone, ``rawmamba_tiny`` at 1024^2 and 1 thread took 3.3 s instead of 4.9 s. The
  benchmarks use both; the command line does not use this one.

Equivalent without code: ``THP_MEM_ALLOC_ENABLE=1``, and ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>``
in the environment, or a caching allocator (jemalloc, tcmalloc) through ``LD_PRELOAD``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# mallopt takes a C int: keep up to 2 GiB of free memory at the top of the heap before trimming.
TRIM_THRESHOLD = 2**31 - 1
# PyTorch's switch for transparent huge pages behind CPU tensors of 2 MiB and more (c10's alloc_cpu).
HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"


def use_huge_pages() -> bool:
    """Ask PyTorch for transparent huge pages behind large CPU tensors, unless the environment already sets
    ``THP_MEM_ALLOC_ENABLE``. Takes effect only before PyTorch's first CPU allocation in this process.

    Returns:
        True when the switch is on (set here or by the environment).
    """
    os.environ.setdefault(HUGE_PAGES_ENV, "1")
    return os.environ[HUGE_PAGES_ENV] == "1"


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
