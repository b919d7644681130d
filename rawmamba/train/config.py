"""Training configuration: one typed dataclass whose defaults are the documentation.

A run is described by a YAML file that lists only what differs from these defaults (see
``configs/``), plus ``--key=value`` overrides from the command line. Every key is type-checked and an
unknown key is an error, so a typo never silently trains the wrong thing. The resolved config is
saved beside the checkpoints of the run.

The defaults follow the paper (section 4.1): Adam at 2e-4, x0.1 every 20 epochs, loss
``MSE + 0.5 * (1 - SSIM)`` (eq. 18), image task on 128x128 patches in batches of 64 for 80 epochs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rawmamba.errors import RawMambaError


@dataclass
class TrainConfig:
    # --- what to learn ---
    task: str = "image"  # "image" (sampled 1.5% metadata), "video" (first-frame metadata) or "mixed" (both)
    model: str = "rawmamba_tiny"  # a name registered in rawmamba.models.create_model
    model_args: dict = field(default_factory=dict)  # constructor overrides, e.g. {"dim": 32}
    init_from: str = ""  # warm start: copy the tensors of this checkpoint whose names and shapes match
    init_skip: list = field(default_factory=list)  # name prefixes not to copy (e.g. ["decoder.head"])

    # --- data ---
    data: str = "synthetic"  # "synthetic" (made on the fly), "cam", "rvd" or "folder"
    data_root: str = ""  # dataset root for cam / rvd / folder
    cameras: list = field(default_factory=list)  # CAM camera folders to use; empty = all
    raw_channels: int = 3  # 3 = demosaiced raw-RGB (CAM), 4 = packed Bayer R,Gr,Gb,B (RVD)
    patch_size: int = 128  # square training crop (paper: 128 image, 256 video)
    frames: int = 5  # frames per training clip (video task; paper: 5)
    sampler: str = "grid"  # image metadata sampler: "grid" (one per 8x8 cell), "random", "superpixel", or
    # "dense": the whole RAW frame, no mask, for a network that samples it itself (cam_unet; synthetic data)
    synthetic_size: int = 192  # side of the synthetic scenes drawn on the fly (crops are taken from them)
    synthetic_count: int = 4096  # synthetic scenes per epoch
    synthetic_flow: str = "dis"  # video flow to train with: "dis" (as at inference) or "exact" (renderer's)
    synthetic_plain_prob: float = 0.0  # share of synthetic scenes with a plain raw converter's global look

    # --- optimisation (paper section 4.1) ---
    batch_size: int = 64  # global batch; split across processes under torchrun
    epochs: int = 80
    max_steps: int = 0  # stop after this many optimiser steps (0 = run all epochs)
    max_minutes: float = 0.0  # stop (and save) after this much wall-clock training time (0 = no limit)
    lr: float = 2e-4
    lr_step_epochs: int = 20  # multiply the learning rate by lr_gamma every this many epochs
    lr_gamma: float = 0.1
    ssim_weight: float = 0.5  # lambda of eq. 18
    grad_clip: float = 1.0  # max gradient norm (0 = off); guards the SSM against rare spikes

    # --- running ---
    device: str = "auto"  # "auto", "cpu", "cuda"
    precision: str = "fp32"  # "fp32" or "bf16" (autocast on GPU)
    num_workers: int = 2
    seed: int = 0
    out_dir: str = "runs/default"
    log_every: int = 10  # steps between TensorBoard scalars
    preview_every: int = 200  # steps between TensorBoard image previews (0 = never)
    save_every: int = 500  # steps between checkpoints (and one at the end of every epoch)


_CHOICES = {
    "task": ("image", "video", "mixed"),
    "data": ("synthetic", "cam", "rvd", "folder"),
    "sampler": ("grid", "random", "superpixel", "dense"),
    "synthetic_flow": ("dis", "exact"),
    "device": ("auto", "cpu", "cuda"),
    "precision": ("fp32", "bf16"),
    "raw_channels": (3, 4),
}


def _field_types() -> dict[str, type]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def _coerce(key: str, value, kind: type, source: str):
    """Check (and for command-line strings, parse) one value against the field's type."""
    if isinstance(value, str) and kind is not str:
        try:
            value = float(value) if kind is float else yaml.safe_load(value)
        except ValueError:
            raise RawMambaError(f"{source}: {key} must be float, got {value!r}") from None
        except yaml.YAMLError as error:
            raise RawMambaError(f"{source}: cannot parse {key}={value!r}: {error}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    expected = kind.__origin__ if isinstance(kind, types.GenericAlias) else kind
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise RawMambaError(f"{source}: {key} must be {expected.__name__}, got {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise RawMambaError(f"{source}: {key} must be one of {_CHOICES[key]}, got {value!r}")
    return value


def _apply(config: TrainConfig, values: dict, source: str) -> TrainConfig:
    kinds = _field_types()
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        raise RawMambaError(f"{source}: unknown config key(s) {unknown}; known keys: {sorted(kinds)}")
    changes = {key: _coerce(key, value, kinds[key], source) for key, value in values.items()}
    return dataclasses.replace(config, **changes)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """Turn ``["lr=1e-3", "--epochs=2"]`` into ``{"lr": "1e-3", "epochs": "2"}``."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.removeprefix("--").partition("=")
        if not sep or not key:
            raise RawMambaError(f"override {pair!r} is not of the form --key=value")
        overrides[key.replace("-", "_")] = value
    return overrides


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides``; all type-checked."""
    config = TrainConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise RawMambaError(f"config file {path} does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise RawMambaError(f"config file {path} is not valid YAML: {error}") from None
        if not isinstance(values, dict):
            raise RawMambaError(f"config file {path} must hold a mapping of key: value")
        config = _apply(config, values, str(path))
    if overrides:
        config = _apply(config, overrides, "command line")
    return config


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (every key, so the run is reproducible from it alone)."""
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
