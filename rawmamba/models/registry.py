"""Named networks, built through one ``create_model(name, **overrides)`` (timm style).

Every entry knows the function that builds it and the class whose constructor arguments the overrides
are checked against: the RAWMamba variants and the learned baselines (CAM-style ``cam_unet``,
RVD-style ``rvd_net``, the blind ``blind_unet``). Every registered network has ``raw_channels``, a
``config`` dict of its constructor arguments, and RAWMamba's ``forward(x, meta_srgb, meta_raw,
meta_mask=None, flow=None)`` signature.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.models.blind_unet import BlindUNet, blind_unet
from rawmamba.models.cam_unet import CAMUNet, cam_unet
from rawmamba.models.rawmamba import RAWMamba, rawmamba_base, rawmamba_tiny
from rawmamba.models.rvd_net import RVDNet, rvd_net


@dataclass(frozen=True)
class ModelEntry:
    """A registered network: ``build(**overrides)`` returns an instance of ``cls``."""

    build: Callable[..., nn.Module]
    cls: type[nn.Module]


MODELS: dict[str, ModelEntry] = {
    "rawmamba_tiny": ModelEntry(rawmamba_tiny, RAWMamba),
    "rawmamba_base": ModelEntry(rawmamba_base, RAWMamba),
    "cam_unet": ModelEntry(cam_unet, CAMUNet),
    "rvd_net": ModelEntry(rvd_net, RVDNet),
    "blind_unet": ModelEntry(blind_unet, BlindUNet),
}


def list_models() -> list[str]:
    """Registered network names, sorted."""
    return sorted(MODELS)


def _entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise RawMambaError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return MODELS[name]


def model_arguments(name: str = "rawmamba_tiny") -> list[str]:
    """The keyword arguments the class of model ``name`` (and hence every override of it) accepts."""
    return [p for p in inspect.signature(_entry(name).cls.__init__).parameters if p != "self"]


def create_model(name: str, **overrides) -> nn.Module:
    """Build the registered network ``name`` with constructor ``overrides``.

    The model remembers ``model.variant = name`` and ``model.overrides`` (what a checkpoint needs to
    call ``create_model`` again); ``model.config`` holds every constructor argument.

    Raises:
        RawMambaError: unknown ``name`` (the message lists the registered names) or unknown override
            (the message lists the accepted arguments).
    """
    entry = _entry(name)
    allowed = model_arguments(name)
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise RawMambaError(f"unknown override(s) {unknown} for model {name!r}; accepted: {', '.join(allowed)}")
    model = entry.build(**overrides)
    model.variant = name
    model.overrides = {k: v for k, v in overrides.items() if k != "encoder_weights"}
    return model
