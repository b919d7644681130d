"""Built-in selective-scan backends, one file each, registered here.

A fused kernel is added the same way: a file with a function of the reference's signature and an
``available()`` check that imports its dependency lazily, plus one ``register_backend`` line below.
"""

from rawmamba.ssm.backends.chunked import selective_scan_chunked
from rawmamba.ssm.backends.reference import selective_scan_reference
from rawmamba.ssm.registry import register_backend

register_backend("reference", selective_scan_reference)
register_backend("chunked", selective_scan_chunked)

__all__ = ["selective_scan_chunked", "selective_scan_reference"]
