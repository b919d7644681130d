"""The three encoders of the Unified Metadata Embedding (paper eq. 8).

- ``f1``, :class:`ConvNeXtEncoder`: the sRGB frames through a ConvNeXt backbone from timm
  (``features_only``), giving multi-scale features. Never downloads anything: the backbone is built
  with ``pretrained=False`` and ImageNet weights are loaded only from a local file (``weights=``).
- ``f2`` and ``f3``, :class:`MetadataEncoder`: the metadata sRGB and the metadata RAW. Image
  metadata is sparse (~1.5% of pixels), so a convolutional context would mostly see zeros; these
  encoders are per-pixel MLPs (1x1 convolutions) followed by a *masked* average over each
  ``cell x cell`` block, which yields one feature per cell plus a validity map (1 where the cell
  holds at least one sample). For the usual grid sampling (one sample per 8x8 cell) this is exactly
  the sample's embedding; dense video metadata gives the cell mean. The same weights serve both.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.models.channel_product import pointwise_conv2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Pixels of the images that one call of a MetadataEncoder's first layer takes (a frame of 1440x640 is 0.92 M):
# 16 training crops of 256x256 go in one call, a video is encoded frame by frame.
PIXELS_PER_CALL = 1 << 20
# A mask with at most this fraction of pixels set is encoded at its samples (MetadataEncoder.pool_samples).
SPARSE_MASK_FRACTION = 1 / 16
# Guards the division by a cell's sample count in the masked cell pooling (both its paths); empty cells give 0.
CELL_POOL_EPS = 1e-6


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.safetensors`` or a torch file (plain, or under "state_dict"/"model")."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise RawMambaError(f"encoder_weights file {path} does not hold a state dict")
    return obj


def load_encoder_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load ImageNet ConvNeXt weights from the local file ``path`` into a timm ``features_only`` model.

    Accepts the classifier checkpoint layout (``stem.0.weight``, ``stages.0...``, ``head.*`` ignored)
    or the ``features_only`` layout (``stem_0.weight``, ``stages_0...``). Raises RawMambaError naming
    the file when it is missing, unreadable, or its tensors do not match the backbone.
    """
    path = Path(path)
    if not path.is_file():
        raise RawMambaError(f"encoder_weights: file not found: {path} (weights are never downloaded)")
    try:
        source = _read_state_dict(path)
    except RawMambaError:
        raise
    except Exception as exc:  # torch/safetensors raise many types for corrupt files
        raise RawMambaError(f"encoder_weights: cannot read {path}: {exc}") from exc
    target = backbone.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for name, tensor in source.items():
        if name.startswith("head."):
            continue
        for candidate in (name, name.replace(".", "_", 1)):
            if candidate in target:
                mapped[candidate] = tensor
                break
    missing = sorted(set(target) - set(mapped))
    wrong = sorted(k for k, t in mapped.items() if t.shape != target[k].shape)
    if missing or wrong:
        detail = (f"missing {missing[:4]}" if missing else "") + (
            f" shape mismatch {[(k, tuple(mapped[k].shape), tuple(target[k].shape)) for k in wrong[:3]]}"
            if wrong
            else ""
        )
        raise RawMambaError(f"encoder_weights: {path} does not match the encoder: {detail.strip()}")
    backbone.load_state_dict(mapped)


class ConvNeXtEncoder(nn.Module):
    """``f1`` of eq. 8: multi-scale ConvNeXt features of the sRGB frames.

    Args:
        backbone: a timm ConvNeXt name (e.g. ``"convnext_tiny"``, the paper's; ``"convnext_atto"``).
        depths: blocks per stage, overriding the named model's (None keeps them).
        dims: channels per stage, overriding the named model's (None keeps them).
        out_indices: which stages to return (0 = stride 4 ... 3 = stride 32).
        drop_path_rate: stochastic depth of the backbone.
        normalize: subtract the ImageNet mean and divide by its std first (as the weights expect).
        weights: local path of ImageNet weights (``.pth``/``.safetensors``) or None (random init).
    """

    def __init__(
        self,
        *,
        backbone: str = "convnext_tiny",
        depths: tuple[int, ...] | None = None,
        dims: tuple[int, ...] | None = None,
        out_indices: tuple[int, ...] = (0, 1, 2, 3),
        drop_path_rate: float = 0.0,
        normalize: bool = True,
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        kwargs: dict = {"drop_path_rate": drop_path_rate}
        if depths is not None:
            kwargs["depths"] = tuple(depths)
        if dims is not None:
            kwargs["dims"] = tuple(dims)
        try:
            self.backbone = timm.create_model(
                backbone, pretrained=False, features_only=True, out_indices=tuple(out_indices), **kwargs
            )
        except RuntimeError as exc:  # timm raises RuntimeError for unknown model names
            raise RawMambaError(f"encoder backbone {backbone!r}: {exc}") from exc
        if weights is not None:
            load_encoder_weights(self.backbone, weights)
        self.channels: list[int] = list(self.backbone.feature_info.channels())
        self.reductions: list[int] = list(self.backbone.feature_info.reduction())
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x: (N, 3, H, W)`` sRGB in [0, 1], H and W multiples of the largest reduction ->
        list of ``(N, channels[i], H / reductions[i], W / reductions[i])``."""
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.backbone(x)


def masked_cell_pool(
    features: torch.Tensor, mask: torch.Tensor | None, cell: int, *, eps: float = CELL_POOL_EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average ``features (N, C, H, W)`` over each ``cell x cell`` block, counting only masked pixels.

    Args:
        features: per-pixel features; H and W multiples of ``cell``.
        mask: ``(N, 1, H, W)`` sample mask in {0, 1}, or None (every pixel counts).
        cell: block size.
        eps: guards the division in empty cells (whose output is 0).

    Returns:
        ``(pooled (N, C, H/cell, W/cell), valid (N, 1, H/cell, W/cell))``, valid = 1 where the cell
        contains at least one sample, else 0.
    """
    pool = nn.functional.avg_pool2d
    if mask is None:
        pooled = pool(features, cell)
        return pooled, pooled.new_ones(pooled.shape[0], 1, *pooled.shape[-2:])
    count = pool(mask, cell)
    pooled = pool(features * mask, cell) / count.clamp_min(eps)
    return pooled, (count > 0).to(features.dtype)


class MetadataEncoder(nn.Module):
    """``f2``/``f3`` of eq. 8: per-pixel MLP, then masked cell pooling to one feature per cell.

    Args:
        in_channels: 3 for sRGB, ``C_raw`` for RAW.
        dim: output channels (the shared embedding space).
        hidden: hidden width of the MLP.
        cell: pooling block (the stride of the UME feature grid, 8 in the paper's sampling).
    """

    def __init__(self, in_channels: int, dim: int, *, hidden: int = 32, cell: int = 8) -> None:
        super().__init__()
        self.cell = cell
        self.mlp = nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``image (N, in_channels, H, W)``, ``mask (N, 1, H, W)`` or None ->
        ``(features (N, dim, H/cell, W/cell), valid (N, 1, H/cell, W/cell))``.

        Equal to ``masked_cell_pool(self.mlp(image), mask, cell)`` up to float rounding, computed cheaper: the
        MLP's last layer is linear and the pooling a (masked) mean, so they commute, and pooling the hidden
        features first saves that layer ``cell ** 2`` times its work and never holds its full-resolution output.
        An empty cell pools to 0 either way, hence the product with ``valid``, which keeps the bias out of it.
        Images go through the first layer in groups of at most :data:`PIXELS_PER_CALL` pixels (one image if it
        is larger), so that without autograd one group's full-resolution hidden features at most exist at a
        time. On the CPU a sparse mask (at most :data:`SPARSE_MASK_FRACTION` of the pixels, as sampled image
        metadata is) takes :meth:`pool_samples` instead, which evaluates the first layer at the samples only."""
        first, activation, last = self.mlp
        sparse = mask is not None and image.device.type == "cpu"
        if sparse and mask.count_nonzero() <= SPARSE_MASK_FRACTION * mask.numel():
            hidden, valid = self.pool_samples(image, mask)
            return last(hidden) * valid, valid
        per_call = max(1, PIXELS_PER_CALL // (image.shape[-2] * image.shape[-1]))
        groups = []
        for i in range(0, image.shape[0], per_call):
            group_mask = None if mask is None else mask[i : i + per_call]
            features = activation(pointwise_conv2d(first, image[i : i + per_call]))  # on the CPU a matrix product
            groups.append(masked_cell_pool(features, group_mask, self.cell))
        hidden = torch.cat([pooled for pooled, _ in groups])
        valid = torch.cat([cells for _, cells in groups])
        return last(hidden) * valid, valid

    def pool_samples(
        self, image: torch.Tensor, mask: torch.Tensor, *, eps: float = CELL_POOL_EPS
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``masked_cell_pool(activation(first(image)), mask, cell)`` with the MLP's first layer evaluated at the
        masked pixels only (of the whole cells, which the pooling reads) and summed into their cells: same
        result up to float rounding, for the cost of the samples instead of every pixel. Measured (2 threads,
        2-core AMD EPYC, ``rawmamba_tiny``, 1024x1024 image, 1/64 sampled): f2 and f3 of the metadata took
        about 110 ms each over every pixel."""
        first, activation, _ = self.mlp
        n, _, h, w = image.shape
        cells_h, cells_w = h // self.cell, w // self.cell
        at = mask[:, 0, : cells_h * self.cell, : cells_w * self.cell].nonzero()  # (S, 3): item, row, column
        item, row, col = at.unbind(1)
        pixels = image[item, :, row, col]  # (S, in_channels)
        features = activation(F.linear(pixels, first.weight.flatten(1), first.bias)) * mask[item, 0, row, col, None]
        cell_index = (item * cells_h + row // self.cell) * cells_w + col // self.cell
        sums = features.new_zeros(n * cells_h * cells_w, features.shape[1]).index_add_(0, cell_index, features)
        count = F.avg_pool2d(mask, self.cell)
        pooled = sums.view(n, cells_h, cells_w, -1).permute(0, 3, 1, 2) / self.cell**2 / count.clamp_min(eps)
        return pooled, (count > 0).to(pooled.dtype)
