"""Self-describing checkpoints: safetensors weights plus a JSON description.

A checkpoint is two files with one stem, ``<stem>.safetensors`` (the model weights) and
``<stem>.json`` (model name and constructor arguments, training config, step, epoch, code version),
so :func:`load_model` rebuilds the network without the original command line. Training state for
``--resume`` (optimiser, random generator state, and a copy of the weights, so that one atomic file holds a
consistent state however a run was stopped) goes to a third file, ``<stem>.state.pt``.
Every file is written to a temporary name and renamed, so an interrupted save never leaves a
half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import rawmamba
from rawmamba.errors import RawMambaError


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{rawmamba.__version__}+{commit}" if commit else rawmamba.__version__


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def save_checkpoint(
    stem: str | Path,
    model: torch.nn.Module,
    *,
    model_name: str,
    model_args: dict,
    info: dict | None = None,
    train_state: dict | None = None,
) -> Path:
    """Write ``<stem>.safetensors`` + ``<stem>.json`` (+ ``<stem>.state.pt`` when ``train_state``).

    Args:
        stem: path without suffix.
        model: the network (a DistributedDataParallel wrapper is unwrapped).
        model_name: its registered name, for ``create_model``.
        model_args: the constructor overrides it was built with.
        info: anything else worth keeping (config, step, epoch, metrics); must be JSON-serialisable.
        train_state: optimiser/scheduler/RNG state for resuming (saved with ``torch.save``).
    Returns:
        The path of the weights file.
    """
    stem = Path(stem)
    weights = {name: tensor.detach().contiguous().cpu() for name, tensor in _unwrap(model).state_dict().items()}
    description = {
        "format": "rawmamba-checkpoint-1",
        "model": model_name,
        "model_args": model_args,
        "code_version": code_version(),
        **(info or {}),
    }
    weights_path = stem.with_suffix(".safetensors")
    if train_state is not None:
        _atomic_write(stem.with_suffix(".state.pt"), lambda tmp: torch.save(train_state, tmp))
    _atomic_write(weights_path, lambda tmp: save_file(weights, tmp, metadata={"model": model_name}))
    _atomic_write(stem.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(description, indent=2)))
    return weights_path


def read_description(path: str | Path) -> dict:
    """The JSON description of a checkpoint given its weights, JSON or stem path."""
    json_path = Path(path).with_suffix(".json")
    if not json_path.is_file():
        raise RawMambaError(f"checkpoint description {json_path} does not exist")
    try:
        description = json.loads(json_path.read_text())
    except json.JSONDecodeError as error:
        raise RawMambaError(f"checkpoint description {json_path} is not valid JSON: {error}") from None
    if description.get("format") != "rawmamba-checkpoint-1":
        raise RawMambaError(f"{json_path} is not a rawmamba checkpoint description")
    return description


def _read_weights(path: str | Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """``(weights path, tensors)`` of ``<stem>.safetensors``, with errors that name the file."""
    weights_path = Path(path).with_suffix(".safetensors")
    if not weights_path.is_file():
        raise RawMambaError(f"checkpoint weights {weights_path} do not exist")
    try:
        return weights_path, load_file(str(weights_path))
    except (SafetensorError, OSError) as error:
        raise RawMambaError(f"checkpoint weights {weights_path} cannot be read: {error}") from None


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``<stem>.safetensors`` into ``model`` strictly, with errors that name the file."""
    weights_path, state = _read_weights(path)
    target = _unwrap(model).state_dict()
    reshaped = [name for name in target if name in state and state[name].shape != target[name].shape]
    missing = [name for name in target if name not in state]
    unexpected = [name for name in state if name not in target]
    if reshaped or missing or unexpected:
        example = (f"e.g. {reshaped[0]}: {tuple(state[reshaped[0]].shape)} in the file, "
                   f"{tuple(target[reshaped[0]].shape)} in the model" if reshaped else
                   f"e.g. {(missing or unexpected)[0]}")
        raise RawMambaError(
            f"checkpoint weights {weights_path} do not fit the model {type(_unwrap(model)).__name__}: "
            f"{len(reshaped)} tensors of another shape, {len(missing)} missing, {len(unexpected)} unexpected "
            f"({example}); is it a checkpoint of another variant?"
        )
    _unwrap(model).load_state_dict(state)


def load_matching_weights(
    model: torch.nn.Module, path: str | Path, skip: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """Initialise ``model`` from a checkpoint of a related architecture (fine-tuning, warm starts).

    Every tensor whose name and shape match is copied, except names starting with a prefix in ``skip``
    (e.g. an output head whose meaning changed); the others keep their current values. A weight whose
    input dimension (dim 1) grew, its other dimensions equal (a layer that now reads extra input
    channels), gets the old weight in its leading input slice and zeros for the new inputs, so the
    warm-started layer computes what it did and learns to use the new inputs.
    Returns ``(loaded, kept)`` parameter/buffer names. An error if nothing matches (wrong file).
    """
    weights_path, source = _read_weights(path)
    target = _unwrap(model).state_dict()
    values = {}
    for name, tensor in target.items():
        if name not in source or name.startswith(skip):
            continue
        old = source[name]
        if old.shape == tensor.shape:
            values[name] = old
        elif _widened_input(old.shape, tensor.shape):
            values[name] = torch.zeros_like(tensor)
            values[name][:, : old.shape[1]] = old
    if not values:
        raise RawMambaError(f"no tensor of {weights_path} fits the model: is it a checkpoint of this kind of model?")
    _unwrap(model).load_state_dict(values, strict=False)
    return list(values), sorted(set(target) - set(values))


def _widened_input(old: torch.Size, new: torch.Size) -> bool:
    """Whether ``new`` is ``old`` with more input channels (dim 1) and every other dimension equal."""
    return len(old) == len(new) >= 2 and new[1] > old[1] and old[0] == new[0] and old[2:] == new[2:]


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the network a checkpoint describes and load its weights; returns (model, description)."""
    from rawmamba.models import create_model

    description = read_description(path)
    model = create_model(description["model"], **description.get("model_args", {}))
    load_weights(model, path)
    return model.to(map_location).eval(), description
