"""CAM's online fine-tuning: adapt a copy of a network to one image's RAW samples at test time.

The stored samples are the only RAW truth available when de-rendering, so CAM (Nam et al., CVPR 2022)
takes a few gradient steps on them before the final prediction: a copy of the reconstructor is trained
for ``steps`` Adam steps (learning rate ``lr``, CAM: 10 steps at 1e-4) on the L1 error of its prediction
at the sampled pixels. The network passed in is never changed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from rawmamba.errors import RawMambaError


def sampled_l1(pred: torch.Tensor, meta_raw: torch.Tensor, meta_mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error at the sampled pixels: ``pred (B, C, H, W)``, ``meta_raw`` and ``meta_mask``
    ``(B, 1, H, W)`` of the metadata."""
    channels = pred.shape[1]
    return ((pred - meta_raw).abs() * meta_mask).sum() / (meta_mask.sum() * channels).clamp_min(1)


def finetune_on_samples(model: nn.Module, x: torch.Tensor, meta_srgb: torch.Tensor, meta_raw: torch.Tensor,
                        meta_mask: torch.Tensor, *, steps: int = 10, lr: float = 1e-4
                        ) -> tuple[nn.Module, list[float]]:
    """A copy of ``model`` after ``steps`` Adam steps of ``sampled_l1`` on the first frame of ``x``.

    Args:
        model: a network with the ``RAWMamba.forward`` signature; when it has ``finetune_parameters()``
            only those are adapted (CAM: the reconstructor), else every parameter.
        x: ``(B, T, 3, H, W)`` sRGB frames; the samples belong to frame 0.
        meta_srgb, meta_raw, meta_mask: the sampled metadata ``(B, 3 | C_raw | 1, H, W)``.
        steps, lr: Adam steps and learning rate.

    Returns:
        ``(tuned copy in eval mode, the loss before each step)``.
    """
    if steps < 0 or lr <= 0:
        raise RawMambaError(f"online fine-tuning needs steps >= 0 and lr > 0, got steps={steps}, lr={lr}")
    tuned = copy.deepcopy(model).eval()
    chosen = tuned.finetune_parameters() if hasattr(tuned, "finetune_parameters") else list(tuned.parameters())
    for parameter in tuned.parameters():
        parameter.requires_grad_(False)
    for parameter in chosen:
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(chosen, lr=lr)
    losses = []
    with torch.enable_grad():  # callers usually de-render under no_grad
        for _ in range(steps):
            pred = tuned(x[:, :1], meta_srgb, meta_raw, meta_mask=meta_mask)[:, 0]
            loss = sampled_l1(pred, meta_raw, meta_mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    for parameter in tuned.parameters():
        parameter.requires_grad_(False)
    return tuned, losses
