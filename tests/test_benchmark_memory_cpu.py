"""benchmarks/memory_cpu.py: the per-module high-water marks of a forward (Linux)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "memory_cpu.py"


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
def test_memory_by_module_follows_the_forward(tmp_path):
    out = tmp_path / "memory.json"
    command = [sys.executable, SCRIPT, "--input", "image", "--size", "64", "64", "--depth", "0", "--out", out]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    names = [row["module"] for row in result["rows"]]
    # the model's children in the order the forward runs them, the model itself last
    assert names[0] == "encoder" and names[-2:] == ["decoder", "(model)"] and names.index("ume") < names.index("lta")
    highs = [row["high_water_mib"] for row in result["rows"]]
    assert highs == sorted(highs) and result["peak_mib"] == highs[-1] >= 0
    assert sum(row["high_water_rise_mib"] for row in result["rows"]) == pytest.approx(highs[-1])
