"""rawmamba.ssm: the Mamba-1 selective scan behind one entry point, with pluggable backends.

``selective_scan(...)`` checks its inputs and runs a backend chosen by argument, by the environment variable
``RAWMAMBA_SCAN_BACKEND`` or by default (``"chunked"``). Built in: ``"reference"`` (the sequential spec,
float64-capable) and ``"chunked"`` (fast, memory-bounded pure PyTorch). Fused kernels register themselves
with :func:`register_backend` from :mod:`rawmamba.ssm.backends`.
"""

from rawmamba.ssm.backends import selective_scan_chunked, selective_scan_reference
from rawmamba.ssm.registry import (
    DEFAULT_BACKEND,
    ENV_VAR,
    available_backends,
    get_backend,
    register_backend,
    registered_backends,
)
from rawmamba.ssm.selective_scan import selective_scan

__all__ = [
    "DEFAULT_BACKEND",
    "ENV_VAR",
    "available_backends",
    "get_backend",
    "register_backend",
    "registered_backends",
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_reference",
]
