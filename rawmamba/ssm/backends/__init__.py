"""Built-in selective-scan backends, one file each, registered here.

Each optional backend imports its dependency lazily and has an ``available()`` check, so importing this package
needs neither numba, Triton, CUDA nor mamba-ssm:

- ``reference``: the sequential spec (any dtype, autograd).
- ``chunked``: fast pure PyTorch, any device.
- ``fused_cpu``: numba kernels, forward and backward (needs numba: ``pip install rawmamba[fast]``).
- ``triton``: Triton GPU kernels, forward and backward (needs Triton and CUDA).
- ``mamba_ssm``: mamba-ssm's CUDA kernel (needs the mamba-ssm package and CUDA).
"""

from rawmamba.ssm.backends.chunked import selective_scan_chunked
from rawmamba.ssm.backends.fused_cpu import fused_cpu_available, selective_scan_fused_cpu
from rawmamba.ssm.backends.mamba_ssm import mamba_ssm_available, selective_scan_mamba_ssm
from rawmamba.ssm.backends.reference import selective_scan_reference
from rawmamba.ssm.backends.triton_scan import selective_scan_triton, triton_available
from rawmamba.ssm.registry import register_backend

register_backend("reference", selective_scan_reference)
register_backend("chunked", selective_scan_chunked)
register_backend("fused_cpu", selective_scan_fused_cpu, available=fused_cpu_available)
# Token-major inputs: the loop forward reads them fastest (on an H100, 1.52 against 2.89 ms for d=192, n=16,
# L=288,000), and rawmamba_base on 5 frames of 1440x640 in bf16 ran at 36.8 against 32.3 frames/s with them
# (benchmarks/results/gpu_checks_h100_4a508e3.json).
register_backend("triton", selective_scan_triton, available=triton_available, token_major=True)
register_backend("mamba_ssm", selective_scan_mamba_ssm, available=mamba_ssm_available)

__all__ = [
    "selective_scan_chunked",
    "selective_scan_fused_cpu",
    "selective_scan_mamba_ssm",
    "selective_scan_reference",
    "selective_scan_triton",
]
