"""rawmamba.ssm: the Mamba-1 selective scan behind one entry point, with pluggable backends.

``selective_scan(...)`` checks its inputs and runs a backend chosen by argument, by the environment variable
``RAWMAMBA_SCAN_BACKEND`` or by default (``"auto"``: the fastest available for the inputs' device). Built in:
``"reference"`` (the sequential spec, float64-capable), ``"chunked"`` (fast, memory-bounded pure PyTorch),
``"fused_cpu"`` (numba, optional), ``"triton"`` (GPU, optional), ``"mamba_ssm"`` (optional); see
:mod:`rawmamba.ssm.backends`.
"""

from rawmamba.ssm.backends import (
    selective_scan_chunked,
    selective_scan_fused_cpu,
    selective_scan_mamba_ssm,
    selective_scan_reference,
    selective_scan_triton,
)
from rawmamba.ssm.registry import (
    AUTO,
    AUTO_PREFERENCE,
    DEFAULT_BACKEND,
    ENV_VAR,
    available_backends,
    get_backend,
    register_backend,
    registered_backends,
)
from rawmamba.ssm.selective_scan import selective_scan

__all__ = [
    "AUTO",
    "AUTO_PREFERENCE",
    "DEFAULT_BACKEND",
    "ENV_VAR",
    "available_backends",
    "get_backend",
    "register_backend",
    "registered_backends",
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_fused_cpu",
    "selective_scan_mamba_ssm",
    "selective_scan_reference",
    "selective_scan_triton",
]
