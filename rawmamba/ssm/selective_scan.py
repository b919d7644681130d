"""The one selective-scan entry point: checks the inputs once, then runs the chosen backend."""

from __future__ import annotations

import torch

import rawmamba.ssm.backends  # noqa: F401  (registers the built-in backends)
from rawmamba.errors import RawMambaError
from rawmamba.ssm.registry import get_backend


def _check(name: str, t: torch.Tensor | None, shape: tuple[int, ...], optional: bool = False) -> None:
    if t is None:
        if not optional:
            raise RawMambaError(f"selective_scan: argument {name} is required")
        return
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.is_complex():
        raise RawMambaError(f"selective_scan: argument {name} must be a real floating-point tensor, got {t!r:.80}")
    if tuple(t.shape) != shape:
        raise RawMambaError(f"selective_scan: argument {name} has shape {tuple(t.shape)}, expected {shape}")


def selective_scan(
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
    backend: str | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Mamba-1 selective scan (paper eq. 1-3), dispatched to a backend.

    Contract (see :func:`rawmamba.ssm.backends.reference.selective_scan_reference` for the exact computation):
    ``u, delta, z``: (b, d, l); ``A``: (d, n) real; ``B, C``: (b, n, l) or grouped (b, g, n, l) with ``g``
    dividing ``d``; ``D, delta_bias``: (d,). Returns ``y`` (b, d, l) in ``u``'s dtype, plus the last state
    (b, d, n) when ``return_last_state``.

    Args:
        backend: a registered backend name (``"chunked"``, ``"reference"``, ``"fused_cpu"``, ``"triton"``,
            ``"mamba_ssm"``) or ``"auto"`` (the fastest available for ``u``'s device, see
            :data:`rawmamba.ssm.registry.AUTO_PREFERENCE`); None reads the environment variable
            ``RAWMAMBA_SCAN_BACKEND``, then falls back to ``"auto"``.

    Raises:
        RawMambaError: a shape or dtype does not match the contract, or the backend is unknown/unavailable.
    """
    if not isinstance(u, torch.Tensor) or u.dim() != 3:
        raise RawMambaError(f"selective_scan: argument u must be a (b, d, l) tensor, got {getattr(u, 'shape', u)}")
    batch, dim, length = u.shape
    if length == 0:
        raise RawMambaError("selective_scan: argument u has length 0; the sequence needs at least one position")
    _check("u", u, (batch, dim, length))
    _check("delta", delta, (batch, dim, length))
    if not isinstance(A, torch.Tensor) or A.dim() != 2 or A.shape[0] != dim:
        raise RawMambaError(f"selective_scan: argument A must be (d={dim}, n), got {getattr(A, 'shape', A)}")
    n = A.shape[1]
    _check("A", A, (dim, n))
    for name, t in (("B", B), ("C", C)):
        if not isinstance(t, torch.Tensor) or t.dim() not in (3, 4):
            raise RawMambaError(f"selective_scan: argument {name} must be (b, n, l) or (b, g, n, l)")
        if t.dim() == 4 and (t.shape[1] < 1 or dim % t.shape[1]):
            raise RawMambaError(f"selective_scan: argument {name} has {t.shape[1]} groups, which must divide d={dim}")
        _check(name, t, (batch, n, length) if t.dim() == 3 else (batch, t.shape[1], n, length))
    _check("D", D, (dim,), optional=True)
    _check("z", z, (batch, dim, length), optional=True)
    _check("delta_bias", delta_bias, (dim,), optional=True)
    return get_backend(backend, device_type=u.device.type).fn(
        u,
        delta,
        A,
        B,
        C,
        D=D,
        z=z,
        delta_bias=delta_bias,
        delta_softplus=delta_softplus,
        return_last_state=return_last_state,
    )
