"""Selective-scan backends: a name -> implementation table with availability checks.

Every backend implements the one signature of :func:`rawmamba.ssm.selective_scan` (the reference backend's
docstring is the contract). Built-in backends are registered in :mod:`rawmamba.ssm.backends`; a fused kernel
(Triton, a CPU extension, mamba-ssm) adds one file there and one :func:`register_backend` call, with an
``available`` callable that returns False where its dependency or device is missing, so that importing
``rawmamba`` never needs CUDA, Triton or mamba-ssm.

The backend used by a call is, in order: the ``backend`` argument, the environment variable
``RAWMAMBA_SCAN_BACKEND`` (read at call time), :data:`DEFAULT_BACKEND`. The name :data:`AUTO` (the default)
is not a backend but a choice made per device: the first available name of :data:`AUTO_PREFERENCE` for the
inputs' device type (fastest first, measured in ``benchmarks/results/scan_*.json``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from rawmamba.errors import RawMambaError

ENV_VAR = "RAWMAMBA_SCAN_BACKEND"
AUTO = "auto"
DEFAULT_BACKEND = AUTO
# Device type -> backends in order of preference for AUTO; other device types get "chunked". On CUDA the Triton
# kernel equals the float64 reference (relative 3e-7 in float32) and is 36x (L = 20,480) to 85x (L = 288,000)
# faster forward than "chunked" on an H100 (benchmarks/results/gpu_checks_h100.json, before LOOP_STAGES = 3);
# "chunked" is the fallback where Triton is missing.
AUTO_PREFERENCE: dict[str, tuple[str, ...]] = {"cpu": ("fused_cpu", "chunked"), "cuda": ("triton", "chunked")}


def _always() -> bool:
    return True


@dataclass(frozen=True)
class ScanBackend:
    """One registered implementation of the selective scan.

    Attributes:
        name: the name users pass as ``backend=`` or in ``RAWMAMBA_SCAN_BACKEND``.
        fn: the implementation, same signature as :func:`rawmamba.ssm.selective_scan` minus ``backend``.
        available: returns True when ``fn`` can run on this machine (dependency importable, device present).
        token_major: ``fn`` is fastest on token-major inputs: ``u``, ``delta``, ``z`` (b, d, l) and ``B``, ``C``
            (b, [g,] n, l) with stride 1 along d / n, i.e. (b, l, d) tensors seen as (b, d, l). Callers that make
            these tensors (:class:`rawmamba.models.bimamba.BiMamba`) then lay them out so; any layout is correct.
    """

    name: str
    fn: Callable
    available: Callable[[], bool] = _always
    token_major: bool = False


_BACKENDS: dict[str, ScanBackend] = {}


def register_backend(
    name: str, fn: Callable, available: Callable[[], bool] = _always, token_major: bool = False
) -> None:
    """Add (or replace) the backend ``name``; ``available()`` is evaluated lazily, at selection time;
    ``token_major``: see :class:`ScanBackend`."""
    if not name or not isinstance(name, str) or name == AUTO:
        raise RawMambaError(f"register_backend: name must be a non-empty string other than {AUTO!r}, got {name!r}")
    _BACKENDS[name] = ScanBackend(name=name, fn=fn, available=available, token_major=token_major)


def registered_backends() -> list[str]:
    """Names of all registered backends, sorted (available or not)."""
    return sorted(_BACKENDS)


def available_backends() -> list[str]:
    """Names of the registered backends that can run on this machine, sorted."""
    return sorted(name for name, entry in _BACKENDS.items() if entry.available())


def get_backend(name: str | None = None, device_type: str = "cpu") -> ScanBackend:
    """The backend for ``name``, else ``$RAWMAMBA_SCAN_BACKEND``, else :data:`DEFAULT_BACKEND`.

    Args:
        name: a registered backend, :data:`AUTO`, or None (environment variable, then default).
        device_type: the inputs' ``torch.device.type`` (``"cpu"``, ``"cuda"``, ...); used by :data:`AUTO` only.

    Raises:
        RawMambaError: the name is not registered, or its ``available()`` is False, or AUTO finds no available
            backend; the message lists the registered and the available backends and says where the name came from.
    """
    source = "argument backend"
    if name is None:
        name = os.environ.get(ENV_VAR) or None
        source = f"environment variable {ENV_VAR}"
    if name is None:
        name, source = DEFAULT_BACKEND, "default"
    listing = f"registered: {', '.join(registered_backends()) or 'none'}; available: " + (
        ", ".join(available_backends()) or "none"
    )
    if name == AUTO:
        preference = AUTO_PREFERENCE.get(device_type, ("chunked",))
        for candidate in preference:
            entry = _BACKENDS.get(candidate)
            if entry is not None and entry.available():
                return entry
        raise RawMambaError(
            f"selective-scan backend {AUTO!r} (from {source}) found none of {', '.join(preference)} available "
            f"for device type {device_type!r}; {listing}"
        )
    entry = _BACKENDS.get(name)
    if entry is None:
        raise RawMambaError(f"unknown selective-scan backend {name!r} (from {source}); {listing}")
    if not entry.available():
        raise RawMambaError(
            f"selective-scan backend {name!r} (from {source}) is not available on this machine; {listing}"
        )
    return entry
