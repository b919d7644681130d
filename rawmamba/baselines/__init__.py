"""Baseline de-rendering methods behind one interface (``DerenderMethod.derender(srgb, metadata)``).

- ``GlobalColourFit`` (``global_fit``): a least-squares polynomial from sRGB to RAW colour.
- ``SampleInterpolation`` (``interpolation``): spatial interpolation of the sampled RAW pixels.
- ``InverseGamma`` (``inverse_gamma``): the inverse sRGB OETF, no metadata used.
"""

from rawmamba.baselines.base import DerenderMethod
from rawmamba.baselines.global_fit import GlobalColourFit, polynomial_features
from rawmamba.baselines.interpolation import SampleInterpolation
from rawmamba.baselines.inverse_gamma import InverseGamma

__all__ = ["DerenderMethod", "GlobalColourFit", "InverseGamma", "SampleInterpolation", "polynomial_features"]
