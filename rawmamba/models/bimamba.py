"""Bidirectional Mamba block (Vision Mamba "v2", Zhu et al. 2024; paper sec. 3.1 and Fig. 3a).

A Mamba-1 block (Gu & Dao 2023): ``in_proj`` to a branch ``x`` and a gate ``z``; causal depth-wise ``conv1d``
and SiLU on ``x``; ``x_proj`` to a low-rank step ``dt`` and input-dependent ``B``, ``C``; ``dt_proj`` back to
one step per channel; the selective scan (paper eq. 1-3, :func:`rawmamba.ssm.selective_scan`) with
``A = -exp(A_log)``, skip ``D`` and gate ``silu(z)``; ``out_proj``.

The bidirectional variant shares ``in_proj`` and ``out_proj``; the backward direction has its own ``conv1d``,
``x_proj``, ``dt_proj``, ``A_log`` and ``D`` (an :class:`SSMBranch` of its own) and runs the same computation
on the flipped sequence; its output is flipped back, the two directions are summed and halved, then projected.
Both directions run on every scan backend (unlike Vim's non-fused path, which silently drops the backward one).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from rawmamba.errors import RawMambaError
from rawmamba.models.causal_conv import causal_conv1d
from rawmamba.models.channel_product import channel_first_product
from rawmamba.ssm import get_backend, selective_scan


class SSMBranch(nn.Module):
    """One scan direction: causal depth-wise conv, projections to (dt, B, C), and the selective scan.

    Args:
        d_inner: channels of the scanned branch.
        d_state: state size ``N`` per channel.
        d_conv: kernel of the causal depth-wise conv1d.
        dt_rank: rank of the step projection.
        dt_min, dt_max: range of the initial step ``dt`` (log-uniform), as in Mamba.
        dt_init_floor: smallest initial step.
        conv_bias: bias in the conv1d.
    """

    def __init__(
        self,
        d_inner: int,
        d_state: int = 16,
        d_conv: int = 4,
        dt_rank: int = 8,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
    ) -> None:
        super().__init__()
        self.d_state, self.dt_rank = d_state, dt_rank
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True)
        # Mamba's initialisation: dt_proj weights keep the variance of dt_rank inputs; its bias is the inverse
        # softplus of a log-uniform step in [dt_min, dt_max]; A = -(1..N) per channel (S4D-real); D = 1.
        nn.init.uniform_(self.dt_proj.weight, -(dt_rank**-0.5), dt_rank**-0.5)
        dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))

    def forward(
        self, x: torch.Tensor, z: torch.Tensor, backend: str | None = None, token_major: bool = False
    ) -> torch.Tensor:
        """``x``, ``z``: (b, d_inner, l), any strides -> gated scan output (b, d_inner, l).

        ``token_major``: hand the scan u, dt, B and C with stride 1 along the channels, as views of (b, l, *)
        tensors, for backends that read them fastest so
        (:attr:`rawmamba.ssm.registry.ScanBackend.token_major`); else contiguous (b, *, l). Same values.
        """
        if token_major:  # x is a strided view of (b, l, 2 d_inner): the conv1d gets it contiguous
            x = x.contiguous()
        x = F.silu(causal_conv1d(self.conv1d, x))
        split = [self.dt_rank, self.d_state, self.d_state]
        if token_major:
            tokens = x.transpose(1, 2).contiguous()  # (b, l, d_inner)
            dt, B, C = torch.split(self.x_proj(tokens), split, dim=-1)  # (b, l, *) views
            x, dt, B, C = (t.transpose(1, 2) for t in (tokens, F.linear(dt, self.dt_proj.weight), B, C))
        else:
            # projections as (out, in) @ (b, in, l): channel-first results, contiguous along l as the scan reads
            dt, B, C = torch.split(channel_first_product(self.x_proj.weight, x), split, dim=1)
            dt = channel_first_product(self.dt_proj.weight, dt)  # bias is added inside the scan (delta_bias)
        return selective_scan(
            x,
            dt,
            -torch.exp(self.A_log.float()),
            B,
            C,
            D=self.D.float(),
            z=z,
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
            backend=backend,
        )


class BiMamba(nn.Module):
    """Mamba block over a token sequence, both directions by default.

    Args:
        d_model: token channels in and out.
        d_state: SSM state size per channel.
        d_conv: causal conv1d kernel.
        expand: inner width ``d_inner = expand * d_model``.
        dt_rank: step projection rank; "auto" is ``ceil(d_model / 16)``.
        bidirectional: add the backward direction (own conv1d/x_proj/dt_proj/A_log/D, shared in/out proj).
        backend: selective-scan backend name; None follows ``RAWMAMBA_SCAN_BACKEND`` / the default.
        dt_min, dt_max, dt_init_floor, conv_bias: see :class:`SSMBranch`.
        bias: bias in ``in_proj`` and ``out_proj`` (Mamba: none).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        bidirectional: bool = True,
        backend: str | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if dt_rank == "auto":
            dt_rank = math.ceil(d_model / 16)
        if not isinstance(dt_rank, int) or dt_rank < 1:
            raise RawMambaError(f"BiMamba: argument dt_rank must be 'auto' or a positive int, got {dt_rank!r}")
        self.d_model, self.d_inner, self.backend = d_model, expand * d_model, backend
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        branch = dict(
            d_inner=self.d_inner,
            d_state=d_state,
            d_conv=d_conv,
            dt_rank=dt_rank,
            dt_min=dt_min,
            dt_max=dt_max,
            dt_init_floor=dt_init_floor,
            conv_bias=conv_bias,
        )
        self.forward_branch = SSMBranch(**branch)
        self.backward_branch = SSMBranch(**branch) if bidirectional else None
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def in_proj_channel_first(self, tokens: torch.Tensor) -> torch.Tensor:
        """``in_proj`` of (b, l, d_model) tokens as a contiguous (b, 2 d_inner, l): the layout of the conv1d and
        the scan (``in_proj(tokens).transpose(1, 2)`` would be a strided view that the scan has to copy)."""
        projected = channel_first_product(self.in_proj.weight, tokens.transpose(1, 2))
        return projected if self.in_proj.bias is None else projected + self.in_proj.bias[:, None].to(projected.dtype)

    @property
    def bidirectional(self) -> bool:
        return self.backward_branch is not None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (b, l, d_model) -> (b, l, d_model)."""
        if tokens.dim() != 3 or tokens.shape[-1] != self.d_model:
            raise RawMambaError(f"BiMamba: input must be (b, l, {self.d_model}), got {tuple(tokens.shape)}")
        token_major = get_backend(self.backend, device_type=tokens.device.type).token_major
        # (b, 2 d_inner, l): a view of (b, l, 2 d_inner) for a token-major backend, else contiguous
        xz = self.in_proj(tokens).transpose(1, 2) if token_major else self.in_proj_channel_first(tokens)
        y = self.forward_branch(*xz.chunk(2, dim=1), backend=self.backend, token_major=token_major)
        if self.backward_branch is not None:
            inference = not torch.is_grad_enabled()
            flipped = xz.flip(-1)  # keeps the layout of the dense xz
            if inference:
                del xz  # only the flipped copy is read from here
            y_back = self.backward_branch(*flipped.chunk(2, dim=1), backend=self.backend, token_major=token_major)
            del flipped
            if inference:  # in place: two sequence-sized temporaries less
                y = y.add_(y_back.flip(-1)).mul_(0.5)
            else:
                y = (y + y_back.flip(-1)) / 2
        return self.out_proj(y.transpose(1, 2))
