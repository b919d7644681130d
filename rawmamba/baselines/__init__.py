"""Baseline de-rendering methods behind one interface (``DerenderMethod``: capture, save/load, derender).

- ``InverseGamma`` (``inverse_gamma``, ``"inverse-gamma"``): the inverse sRGB OETF, no metadata used.
- ``GlobalColourFit`` (``global_fit``, ``"global-fit"``): a least-squares polynomial from sRGB to RAW colour.
- ``SampleInterpolation`` (``interpolation``, ``"interpolation"``): spatial interpolation of the samples.
- ``RIRFit`` (``rir``, ``"rir"``): a compact global ISP model fitted at capture time (RIR-style, <= 64 KB).
- ``SAMInterpolation`` (``sam``, ``"sam"``): RBF interpolation in colour + position space (SAM-style).
- ``ImplicitNeuralFit`` (``inf``, ``"inf"``): a per-image tiled SIREN fitted to the samples (INF-style).
- ``get_method(name, **options)``, ``METHODS`` (``registry``); ``rawmamba bench quality`` (``bench``).
"""

from rawmamba.baselines.base import DerenderMethod
from rawmamba.baselines.global_fit import GlobalColourFit, polynomial_features
from rawmamba.baselines.inf import ImplicitNeuralFit
from rawmamba.baselines.interpolation import SampleInterpolation
from rawmamba.baselines.inverse_gamma import InverseGamma
from rawmamba.baselines.registry import METHODS, get_method
from rawmamba.baselines.rir import RIRFit, RIRParameters
from rawmamba.baselines.sam import SAMInterpolation

__all__ = [
    "METHODS",
    "DerenderMethod",
    "GlobalColourFit",
    "ImplicitNeuralFit",
    "InverseGamma",
    "RIRFit",
    "RIRParameters",
    "SAMInterpolation",
    "SampleInterpolation",
    "get_method",
    "polynomial_features",
]
