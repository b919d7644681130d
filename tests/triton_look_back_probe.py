"""A Triton kernel that runs :func:`rawmamba.ssm.backends.triton_scan_kernels.look_back` alone, for the tests.

Imported by a test under Triton's interpreter (which needs ``triton.language`` among the kernel's globals), after
the kernels module; the test drops it from ``sys.modules`` afterwards.
"""

import triton
import triton.language as tl

from rawmamba.ssm.backends import triton_scan_kernels as kernels


@triton.jit
def look_back_probe(flags_ptr, local_ptr, decay_ptr, inclusive_ptr, out_ptr, chunk, block, blocks, rows,
                    BD: tl.constexpr, BN: tl.constexpr):  # fmt: skip
    """The state entering ``chunk`` of channel block ``block`` (of ``blocks``, each BD channels of BN states, in
    rows of ``rows``), into that block's rows of ``out``."""
    state_off = (block * BD + tl.arange(0, BD)[:, None]) * BN + tl.arange(0, BN)[None, :]
    carry = kernels.look_back(flags_ptr, local_ptr, decay_ptr, inclusive_ptr, chunk, block, blocks, rows, state_off,
                              state_off >= 0, BD, BN)  # fmt: skip
    tl.store(out_ptr + state_off, carry)
