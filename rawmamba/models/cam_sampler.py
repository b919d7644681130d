"""Content-aware metadata sampler of the CAM-style baseline (learned sampling, one pixel per cell).

CAM (Nam et al., "Learning sRGB-to-Raw-RGB de-rendering with content-aware metadata", CVPR 2022) learns
where to store the RAW samples from the sRGB image, with a soft superpixel-style assignment made hard
for storage. Here a small CNN scores every pixel; inside each ``cell x cell`` cell the softmax of the
scores is the soft assignment of the cell to its pixels, and the kept pixel is its argmax. The mask used
in training is the hard one-hot in the forward pass with the soft assignment's gradient
(straight-through estimator), so the reconstruction loss teaches the scorer which pixels are worth
storing, while the stored budget is exactly one pixel per cell (the grid sampler's, 1/64 for 8x8).
Partial cells at the bottom/right edge keep one pixel inside the image, as ``grid_mask(edge="sample")``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rawmamba.models.padding import crop_to, pad_to_multiple


class ContentAwareSampler(nn.Module):
    """Scores pixels from the sRGB and keeps the best one per cell.

    Args:
        cell: cell side (8: one pixel per 8x8 cell, 1.5625%).
        width: channels of the scoring CNN.
        temperature: softmax temperature of the soft assignment (its gradient's sharpness).
    """

    def __init__(self, *, cell: int = 8, width: int = 16, temperature: float = 1.0) -> None:
        super().__init__()
        self.cell, self.temperature = cell, temperature
        self.score = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=4, dilation=4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 1, 1),
        )

    def assignment(self, srgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(soft, hard)`` assignments ``(B, 1, H, W)``: per cell a softmax over its pixels, and its argmax."""
        b, _, h, w = srgb.shape
        c = self.cell
        padded = pad_to_multiple(srgb, c)
        scores = self.score(padded) / self.temperature
        inside = pad_to_multiple(srgb.new_ones(b, 1, h, w), c, mode="constant") > 0  # padding is never chosen
        scores = scores.masked_fill(~inside, float("-inf"))
        hc, wc = padded.shape[-2] // c, padded.shape[-1] // c
        cells = scores.view(b, hc, c, wc, c).permute(0, 1, 3, 2, 4).reshape(b, hc, wc, c * c)
        soft = cells.softmax(dim=-1)
        hard = F.one_hot(cells.argmax(dim=-1), c * c).to(soft.dtype)

        def to_image(per_cell: torch.Tensor) -> torch.Tensor:
            image = per_cell.view(b, hc, wc, c, c).permute(0, 1, 3, 2, 4).reshape(b, 1, hc * c, wc * c)
            return crop_to(image, h, w)

        return to_image(soft), to_image(hard)

    def hard_mask(self, srgb: torch.Tensor) -> torch.Tensor:
        """The stored sample mask ``(B, 1, H, W)``, exactly one 1 per cell, zeros elsewhere."""
        return self.assignment(srgb)[1]

    def forward(self, srgb: torch.Tensor) -> torch.Tensor:
        """Straight-through mask ``(B, 1, H, W)``: the hard mask's values, the soft assignment's gradient."""
        soft, hard = self.assignment(srgb)
        return hard + soft - soft.detach()
