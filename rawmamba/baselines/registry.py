"""The baseline methods by name: ``get_method(name, **options)`` and ``METHODS``."""

from __future__ import annotations

from rawmamba.baselines.base import DerenderMethod
from rawmamba.baselines.global_fit import GlobalColourFit
from rawmamba.baselines.inf import ImplicitNeuralFit
from rawmamba.baselines.interpolation import SampleInterpolation
from rawmamba.baselines.inverse_gamma import InverseGamma
from rawmamba.baselines.rir import RIRFit
from rawmamba.baselines.sam import SAMInterpolation
from rawmamba.errors import RawMambaError

__all__ = ["METHODS", "get_method"]

METHODS: dict[str, type[DerenderMethod]] = {
    cls.name: cls
    for cls in (InverseGamma, GlobalColourFit, SampleInterpolation, RIRFit, SAMInterpolation, ImplicitNeuralFit)
}


def get_method(name: str, **options: object) -> DerenderMethod:
    """A new method ``name`` (see ``METHODS``) built with ``options`` as constructor keyword arguments."""
    if name not in METHODS:
        raise RawMambaError(f"unknown de-rendering method {name!r}; methods: {', '.join(METHODS)}")
    try:
        return METHODS[name](**options)
    except TypeError as err:
        raise RawMambaError(f"method {name!r}: bad options {sorted(options)} ({err})") from err
