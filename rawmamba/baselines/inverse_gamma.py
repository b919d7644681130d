"""Identity after the inverse sRGB gamma: the no-metadata floor.

Undo the sRGB OETF and call the result RAW. It knows nothing of the camera (white balance, colour
matrix, tone curves), so every table shows how much the metadata is worth above it. For packed Bayer
output the linear RGB is spread to R, Gr, Gb, B.
"""

from __future__ import annotations

import torch

from rawmamba.baselines.base import DerenderMethod
from rawmamba.isp import srgb_oetf_inverse


class InverseGamma(DerenderMethod):
    """``raw = srgb_oetf_inverse(srgb)``; ignores the metadata except for the RAW channel count."""

    name = "inverse-gamma"

    def derender(self, srgb: torch.Tensor, metadata) -> torch.Tensor:
        self.check(srgb, metadata)
        linear = srgb_oetf_inverse(srgb.clamp(0, 1))
        if metadata.raw.shape[0] == 4:
            linear = linear[:, [0, 1, 1, 2]]
        return linear
