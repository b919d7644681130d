"""Named RAWMamba variants, built through one ``create_model(name, **overrides)`` (timm style)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from rawmamba.errors import RawMambaError
from rawmamba.models.rawmamba import RAWMamba, rawmamba_base, rawmamba_tiny

MODELS: dict[str, Callable[..., RAWMamba]] = {
    "rawmamba_tiny": rawmamba_tiny,
    "rawmamba_base": rawmamba_base,
}


def list_models() -> list[str]:
    """Registered variant names, sorted."""
    return sorted(MODELS)


def model_arguments() -> list[str]:
    """The keyword arguments ``RAWMamba`` (and hence every override) accepts."""
    return [p for p in inspect.signature(RAWMamba.__init__).parameters if p != "self"]


def create_model(name: str, **overrides) -> RAWMamba:
    """Build the registered variant ``name`` with constructor ``overrides``.

    The model remembers ``model.variant = name`` and ``model.overrides`` (what a checkpoint needs to
    call ``create_model`` again); ``model.config`` holds every constructor argument.

    Raises:
        RawMambaError: unknown ``name`` (the message lists the registered names) or unknown override
            (the message lists the accepted arguments).
    """
    if name not in MODELS:
        raise RawMambaError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    allowed = model_arguments()
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise RawMambaError(f"unknown override(s) {unknown} for model {name!r}; accepted: {', '.join(allowed)}")
    model = MODELS[name](**overrides)
    model.variant = name
    model.overrides = {k: v for k, v in overrides.items() if k != "encoder_weights"}
    return model
