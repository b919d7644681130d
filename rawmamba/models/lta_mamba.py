"""Local Tone-Aware Mamba (LTA-Mamba; paper sec. 3.4, eq. 14-17, Fig. 3).

One :class:`LTAMamba` module works on a feature volume ``(b, c, t, h, w)`` (an image is ``t = 1``):

- :class:`LocalMambaBlock` (eq. 14-15): tokens in 3-D Hilbert order (local spatio-temporal neighbours stay
  close in the sequence); ``F1 = SSM(LN(F)) + F``; ``F2 = F1 + DWC(LN(F1))``.
- :class:`GlobalMambaBlock` (eq. 16-17): tokens in raster order; ``F3 = SSM(LN(F2)) + F2``;
  ``F2hat = CA(F2)``; ``F4 = F3 + DWC(LN(F3 + F2hat))``.
- a closing convolution (sec. 3.4.2: "we refine F4 through a convolution layer").

``SSM`` is the bidirectional Mamba of :mod:`rawmamba.models.bimamba`, ``LN`` a LayerNorm over channels, ``CA``
squeeze-excitation channel attention. Choices the paper leaves open, as arguments:

- ``conv_mode``: the depth-wise conv ``DWC`` and the closing conv run on the feature volume, either ``"3d"``
  (kernel ``k x k x k`` over (t, h, w): mixes neighbouring frames too; the default, as the blocks are
  spatio-temporal) or ``"2d"`` (kernel ``1 x k x k``, each frame on its own). For ``t = 1`` both see the
  same pixels (zero padding in time).
- the closing conv is a dense (not depth-wise) conv with no residual, as the paper describes it.
- (performance only) the convs run through :func:`rawmamba.models.volume_conv.conv_volume`: the same
  ``nn.Conv3d``, computed as per-frame 2-D convs on the CPU and for ``t = 1``.

Ablation switches (paper Table 3): ``local_scan=False`` / ``global_scan=False`` remove that block and its
parameters; ``tone_aware=False`` is the plain Mamba variant: raster scans in both blocks, no channel attention.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from rawmamba.errors import RawMambaError
from rawmamba.models.bimamba import BiMamba
from rawmamba.models.channel_attention import ChannelAttention
from rawmamba.models.scan_order import from_sequence, hilbert_order, raster_order, to_sequence
from rawmamba.models.volume_conv import conv_volume

SCAN_ORDERS = {"hilbert": hilbert_order, "raster": raster_order}
CONV_MODES = ("3d", "2d")


def same_size_conv3d(dim: int, mode: str, kernel_size: int, depthwise: bool) -> nn.Conv3d:
    """A same-size conv on (b, dim, t, h, w): ``"3d"`` kernel k^3, ``"2d"`` kernel 1 x k x k (per frame)."""
    if mode not in CONV_MODES:
        raise RawMambaError(f"argument conv_mode must be one of {CONV_MODES}, got {mode!r}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise RawMambaError(f"conv kernel_size must be odd and positive, got {kernel_size}")
    kt = kernel_size if mode == "3d" else 1
    return nn.Conv3d(
        dim,
        dim,
        (kt, kernel_size, kernel_size),
        padding=(kt // 2, kernel_size // 2, kernel_size // 2),
        groups=dim if depthwise else 1,
    )


def norm_volume(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the channels of a volume (b, c, t, h, w)."""
    return norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


class _MambaBlock(nn.Module):
    """Shared parts of the two blocks: LN -> bidirectional SSM on the ordered tokens, LN -> DWC on the volume."""

    def __init__(
        self,
        dim: int,
        scan: str,
        d_state: int,
        expand: int,
        d_conv: int,
        bidirectional: bool,
        conv_mode: str,
        dw_kernel: int,
        backend: str | None,
    ) -> None:
        super().__init__()
        if scan not in SCAN_ORDERS:
            raise RawMambaError(f"argument scan must be one of {sorted(SCAN_ORDERS)}, got {scan!r}")
        self.scan = scan
        self.norm_ssm = nn.LayerNorm(dim)
        self.ssm = BiMamba(
            dim, d_state=d_state, d_conv=d_conv, expand=expand, bidirectional=bidirectional, backend=backend
        )
        self.norm_conv = nn.LayerNorm(dim)
        self.dwconv = same_size_conv3d(dim, conv_mode, dw_kernel, depthwise=True)

    def ssm_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``x + SSM(LN(x))`` with tokens in this block's scan order; volume in, volume out."""
        size = tuple(x.shape[2:])
        order = SCAN_ORDERS[self.scan](*size, device=x.device)
        tokens = to_sequence(x, order)  # eq. 14 / 16: Rearrange(F, C)
        tokens = tokens + self.ssm(self.norm_ssm(tokens))
        return from_sequence(tokens, order, size)


class LocalMambaBlock(_MambaBlock):
    """Eq. 14-15: ``F1 = SSM(LN(F)) + F`` in local (Hilbert) order, ``F2 = F1 + DWC(LN(F1))``.

    Args:
        dim: channels. d_state, expand, d_conv, bidirectional: of the :class:`BiMamba`.
        scan: token order, ``"hilbert"`` (paper) or ``"raster"`` (plain Mamba ablation).
        conv_mode, dw_kernel: the depth-wise conv (see the module docstring).
        backend: selective-scan backend (None: environment/default).
    """

    def __init__(
        self,
        dim: int,
        d_state: int = 16,
        expand: int = 2,
        d_conv: int = 4,
        bidirectional: bool = True,
        scan: str = "hilbert",
        conv_mode: str = "3d",
        dw_kernel: int = 3,
        backend: str | None = None,
    ) -> None:
        super().__init__(dim, scan, d_state, expand, d_conv, bidirectional, conv_mode, dw_kernel, backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(b, c, t, h, w) -> same shape."""
        f1 = self.ssm_residual(x)
        return f1 + conv_volume(self.dwconv, norm_volume(self.norm_conv, f1))


class GlobalMambaBlock(_MambaBlock):
    """Eq. 16-17: ``F3 = SSM(LN(F2)) + F2`` in raster order, ``F4 = F3 + DWC(LN(F3 + CA(F2)))``.

    Args:
        channel_attention: add ``CA(F2)`` (paper); False drops it (plain Mamba ablation): ``F3 + DWC(LN(F3))``.
        reduction: channel-attention bottleneck ratio.
        Others as :class:`LocalMambaBlock` (``scan`` defaults to ``"raster"``).
    """

    def __init__(
        self,
        dim: int,
        d_state: int = 16,
        expand: int = 2,
        d_conv: int = 4,
        bidirectional: bool = True,
        scan: str = "raster",
        channel_attention: bool = True,
        reduction: int = 16,
        conv_mode: str = "3d",
        dw_kernel: int = 3,
        backend: str | None = None,
    ) -> None:
        super().__init__(dim, scan, d_state, expand, d_conv, bidirectional, conv_mode, dw_kernel, backend)
        self.channel_attention = ChannelAttention(dim, reduction=reduction) if channel_attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(b, c, t, h, w) -> same shape."""
        f3 = self.ssm_residual(x)
        mixed = f3 if self.channel_attention is None else f3 + self.channel_attention(x)
        return f3 + conv_volume(self.dwconv, norm_volume(self.norm_conv, mixed))


class LTAMamba(nn.Module):
    """One LTA-Mamba module: local block, global block, closing conv; (b, dim, t, h, w) -> same shape.

    Args:
        dim: feature channels.
        d_state: SSM state size. expand: BiMamba inner width factor. d_conv: BiMamba causal conv kernel.
        local_scan: include the local (Hilbert) block (ablation: False removes it and its parameters).
        global_scan: include the global (raster) block (ablation: False removes it and its parameters).
        tone_aware: the paper's design; False is plain Mamba: raster order in the local block, no CA.
        backend: selective-scan backend name (None: ``RAWMAMBA_SCAN_BACKEND`` or the default).
        bidirectional: bidirectional SSM (paper: yes, ref. [56]).
        conv_mode: ``"3d"`` or ``"2d"`` for the depth-wise convs and the closing conv (module docstring).
        dw_kernel: depth-wise conv kernel. out_kernel: closing conv kernel. reduction: CA bottleneck ratio.
    """

    def __init__(
        self,
        dim: int,
        d_state: int = 16,
        expand: int = 2,
        local_scan: bool = True,
        global_scan: bool = True,
        tone_aware: bool = True,
        backend: str | None = None,
        d_conv: int = 4,
        bidirectional: bool = True,
        conv_mode: str = "3d",
        dw_kernel: int = 3,
        out_kernel: int = 3,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        self.dim = dim
        common = dict(
            dim=dim,
            d_state=d_state,
            expand=expand,
            d_conv=d_conv,
            bidirectional=bidirectional,
            conv_mode=conv_mode,
            dw_kernel=dw_kernel,
            backend=backend,
        )
        scan = "hilbert" if tone_aware else "raster"
        self.local_block = LocalMambaBlock(scan=scan, **common) if local_scan else None
        self.global_block = (
            GlobalMambaBlock(channel_attention=tone_aware, reduction=reduction, **common) if global_scan else None
        )
        self.conv = same_size_conv3d(dim, conv_mode, out_kernel, depthwise=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(b, dim, t, h, w) -> same shape."""
        if x.dim() != 5 or x.shape[1] != self.dim:
            raise RawMambaError(f"LTAMamba: input must be (b, {self.dim}, t, h, w), got {tuple(x.shape)}")
        if self.local_block is not None:
            x = self.local_block(x)
        if self.global_block is not None:
            x = self.global_block(x)
        return conv_volume(self.conv, x)


class LTAMambaStack(nn.Module):
    """``depth`` LTA-Mamba modules in a row (paper: 3); keyword arguments go to every :class:`LTAMamba`."""

    def __init__(self, dim: int, depth: int = 3, **kwargs) -> None:
        super().__init__()
        if depth < 1:
            raise RawMambaError(f"LTAMambaStack: argument depth must be >= 1, got {depth}")
        self.blocks = nn.ModuleList(LTAMamba(dim, **kwargs) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(b, dim, t, h, w) -> same shape."""
        for block in self.blocks:
            x = block(x)
        return x
