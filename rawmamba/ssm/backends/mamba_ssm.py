"""The selective scan of the ``mamba-ssm`` package (Gu & Dao's fused CUDA kernel) as an optional backend.

``mamba-ssm`` builds only against CUDA (docs/REFERENCE.md); :func:`mamba_ssm_available` is False where it cannot
be imported or no CUDA device is present, and the package is imported only then, so ``import rawmamba`` never
needs it. The kernel has the same contract as ours (grouped ``B``/``C`` included); it computes in float32 for
float32/float16/bfloat16 inputs and rejects float64, which this wrapper reports clearly.
"""

from __future__ import annotations

import functools
import importlib

import torch

from rawmamba.errors import RawMambaError


@functools.cache
def _selective_scan_fn():
    """mamba-ssm's ``selective_scan_fn``, or None when the package cannot be imported."""
    try:
        module = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    except Exception:  # noqa: BLE001 (a broken CUDA extension raises ImportError, OSError or RuntimeError)
        return None
    return getattr(module, "selective_scan_fn", None)


def mamba_ssm_available() -> bool:
    """True when mamba-ssm imports and a CUDA device is present."""
    return torch.cuda.is_available() and _selective_scan_fn() is not None


def selective_scan_mamba_ssm(
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
    """Selective scan by mamba-ssm's CUDA kernel; same contract as the reference, except float64.

    Raises:
        RawMambaError: mamba-ssm is missing, an input is not on a CUDA device, or ``u`` is float64.
    """
    fn = _selective_scan_fn()
    if fn is None:
        raise RawMambaError("selective_scan_mamba_ssm: the mamba-ssm package cannot be imported")
    if u.device.type != "cuda":
        raise RawMambaError(f"selective_scan_mamba_ssm: argument u is on {u.device}; mamba-ssm needs CUDA tensors")
    if u.dtype == torch.float64:
        raise RawMambaError("selective_scan_mamba_ssm: argument u is float64, which mamba-ssm does not support")
    f32 = torch.float32
    result = fn(
        u,
        delta.to(u.dtype),
        A.to(f32),
        B.to(u.dtype),
        C.to(u.dtype),
        D=None if D is None else D.to(f32),
        z=None if z is None else z.to(u.dtype),
        delta_bias=None if delta_bias is None else delta_bias.to(f32),
        delta_softplus=bool(delta_softplus),
        return_last_state=return_last_state,
    )
    if return_last_state:
        y, h_last = result
        return y.to(u.dtype), h_last.to(f32)
    return result.to(u.dtype)
