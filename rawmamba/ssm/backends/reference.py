"""The sequential selective scan: the specification every other backend is tested against.

Mamba-1 / S6 (Gu & Dao 2023; paper eq. 1-3): zero-order-hold discretisation of a diagonal state-space model
with input-dependent step ``delta`` and projections ``B``, ``C``, run as a plain loop over the sequence.
It is slow (one step per position) but exact in any floating dtype, float64 included, and differentiable
by autograd; it is also a real fallback backend (``backend="reference"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Scan arithmetic dtype: float64 stays float64, everything else runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def selective_scan_reference(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Selective scan, one position at a time.

    Shapes (batch ``b``, channels ``d``, state size ``n``, length ``l``, groups ``g`` dividing ``d``):

    - ``u``: (b, d, l) input; ``delta``: (b, d, l) step before bias/softplus; ``z``: (b, d, l) gate or None.
    - ``A``: (d, n) real state matrix (diagonal per channel; negative for a stable system).
    - ``B``, ``C``: (b, n, l), or (b, g, n, l) where channel ``i`` uses group ``i // (d // g)``.
    - ``D``: (d,) skip weight or None; ``delta_bias``: (d,) or None.

    Computation (in float64 for float64 inputs, else float32)::

        dt = delta + delta_bias;  dt = softplus(dt) if delta_softplus
        h_t = exp(dt_t * A) * h_{t-1} + dt_t * B_t * u_t        h_{-1} = 0, h: (b, d, n)   (eq. 2-3, ZOH on A)
        y_t = sum_n C_t * h_t + D * u_t;  y = y * silu(z)

    Returns:
        ``y`` (b, d, l) in ``u``'s dtype, and with ``return_last_state`` also ``h_{l-1}`` (b, d, n) in the
        compute dtype.
    """
    dtype_in = u.dtype
    cdt = compute_dtype(dtype_in)
    u, delta, A = u.to(cdt), delta.to(cdt), A.to(cdt)
    batch, dim, length = u.shape
    n = A.shape[1]
    B = (B if B.dim() == 4 else B.unsqueeze(1)).to(cdt)
    C = (C if C.dim() == 4 else C.unsqueeze(1)).to(cdt)
    groups = B.shape[1]
    if delta_bias is not None:
        delta = delta + delta_bias.to(cdt)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    h = u.new_zeros(batch, groups, dim // groups, n)
    A_g = A.view(groups, dim // groups, n)
    ys = []
    # unbind (not indexing) per step keeps autograd's backward linear in the length.
    steps = zip(delta.unbind(-1), u.unbind(-1), B.unbind(-1), C.unbind(-1), strict=True)
    for dt_t, u_t, b_t, c_t in steps:
        dt_t = dt_t.reshape(batch, groups, dim // groups, 1)
        h = torch.exp(dt_t * A_g) * h + dt_t * u_t.reshape(batch, groups, dim // groups, 1) * b_t[:, :, None, :]
        ys.append((h * c_t[:, :, None, :]).sum(-1).reshape(batch, dim))
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(batch, dim, 0)
    if D is not None:
        y = y + u * D.to(cdt)[:, None]
    if z is not None:
        y = y * F.silu(z.to(cdt))
    y = y.to(dtype_in)
    if return_last_state:
        return y, h.reshape(batch, dim, n)
    return y
