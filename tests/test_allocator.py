"""rawmamba.allocator: the glibc heap setting applies (in a child process, leaving the test process alone)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

CHILD = """
import torch
from rawmamba.allocator import reuse_freed_memory
ok = reuse_freed_memory()
for _ in range(3):  # large tensors are still allocated, freed and reused correctly
    x = torch.full((64, 1024, 1024), 2.0)
    assert float(x.sum()) == 2.0 * x.numel()
    del x
print(ok)
"""


def test_reuse_freed_memory_returns_a_bool_and_tensors_still_work():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] in ("True", "False")


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_reuse_freed_memory_accepted_by_glibc():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "True"
