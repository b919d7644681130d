"""rawmamba.allocator: the glibc heap setting and PyTorch's huge pages apply (in child processes, leaving the test
process alone)."""

from __future__ import annotations

import os
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


def test_use_huge_pages_sets_the_switch_unless_the_environment_does(monkeypatch):
    from rawmamba.allocator import HUGE_PAGES_ENV, use_huge_pages

    monkeypatch.delenv(HUGE_PAGES_ENV, raising=False)
    assert use_huge_pages() and os.environ[HUGE_PAGES_ENV] == "1"
    monkeypatch.setenv(HUGE_PAGES_ENV, "0")  # a user's choice is kept
    assert not use_huge_pages() and os.environ[HUGE_PAGES_ENV] == "0"


HUGE_PAGES_CHILD = """
import os, sys
os.environ.pop("THP_MEM_ALLOC_ENABLE", None)
if sys.argv[1] == "cli":
    from rawmamba.cli import main
    assert main([]) == 2  # no command: help, exit code 2
import torch
x = torch.ones(64, 1024, 1024)  # 256 MiB, touched
for line in open("/proc/self/smaps_rollup"):
    if line.startswith("AnonHugePages:"):
        print(int(line.split()[1]))
"""


def _thp_mode() -> str | None:
    try:
        text = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return None
    return text.split("[")[1].split("]")[0]


@pytest.mark.skipif(_thp_mode() not in ("always", "madvise"), reason="needs Linux transparent huge pages")
def test_the_command_line_gets_huge_pages_for_large_tensors():
    """The switch is set before the command modules allocate anything, so PyTorch honours it; with the kernel in
    madvise mode a process without it gets no huge pages (the control)."""

    def huge_kib(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", HUGE_PAGES_CHILD, mode], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        return int(run.stdout.strip().splitlines()[-1])

    assert huge_kib("cli") >= 2048  # at least one 2 MiB huge page (all 128 when memory is not fragmented)
    if _thp_mode() == "madvise":
        assert huge_kib("plain") == 0
