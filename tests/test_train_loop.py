"""The training loop end to end on tiny synthetic data: checkpoints, logs, resume, refusal to overwrite."""

import json
import os
import subprocess
import sys

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.inference import NetworkMethod
from rawmamba.train.checkpoint import read_description
from rawmamba.train.config import load_config
from rawmamba.train.loop import interleave, lr_at
from rawmamba.train.loop import train as run_training

TINY = {
    "task": "mixed",
    "model_args": {"mamba_depth": 1, "embed_dim": 16, "meta_hidden": 16, "mamba_dim": 16, "decoder_dims": [16, 8, 8]},
    "synthetic_count": 2,
    "synthetic_size": 64,
    "patch_size": 32,
    "frames": 2,
    "batch_size": 2,
    "num_workers": 0,
    "log_every": 1,
    "preview_every": 2,
    "save_every": 2,
    "device": "cpu",
}


def _config(tmp_path, **changes):
    return load_config(None, {**TINY, "out_dir": str(tmp_path / "run"), **changes})


def test_lr_schedule_is_the_papers_step_decay():
    config = load_config(None, {"lr": 2e-4, "lr_step_epochs": 20, "lr_gamma": 0.1})
    assert lr_at(0, config) == pytest.approx(2e-4)
    assert lr_at(19, config) == pytest.approx(2e-4)
    assert lr_at(20, config) == pytest.approx(2e-5)
    assert lr_at(45, config) == pytest.approx(2e-6)


def test_interleave_alternates_and_drains_every_loader():
    assert list(interleave([[1, 2, 3], ["a"]])) == [1, "a", 2, 3]


def test_train_saves_logs_and_resumes(tmp_path):
    weights = run_training(_config(tmp_path, max_steps=3))
    description = read_description(weights)
    assert description["step"] == 3 and description["model"] == "rawmamba_tiny"
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
    assert (tmp_path / "run" / "config.yaml").is_file()

    with pytest.raises(RawMambaError, match="already holds a run"):
        run_training(_config(tmp_path, max_steps=3))
    run_training(_config(tmp_path, max_steps=5), resume=True)
    assert read_description(weights)["step"] == 5
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]

    method = NetworkMethod.from_checkpoint(weights)  # the checkpoint rebuilds its own model
    assert method.model.raw_channels == 3


def test_resume_without_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(RawMambaError, match="no checkpoint to resume"):
        run_training(_config(tmp_path, max_steps=1), resume=True)


@pytest.mark.slow
def test_torchrun_two_processes_with_gloo(tmp_path):
    overrides = [f"--{key}={json.dumps(value) if isinstance(value, dict) else value}" for key, value in TINY.items()]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "rawmamba.cli", "train",
               *overrides, "--max_steps=2", f"--out_dir={tmp_path / 'ddp'}"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_description(tmp_path / "ddp" / "checkpoints" / "last")["step"] == 2
