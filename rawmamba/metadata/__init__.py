"""rawmamba.metadata: the (sRGB, RAW) metadata pair, image samplers, video first-frame metadata, files.

- ``Metadata``, ``sample_image_metadata``, ``first_frame_metadata`` (``container``).
- ``grid_mask``, ``random_mask``, ``superpixel_mask``, ``make_sampler`` (``samplers``).
- ``save_metadata``, ``load_metadata``, ``read_metadata_info`` (``io``; the file format is documented there).
"""

from rawmamba.metadata.container import RAW_CHANNELS, Metadata, first_frame_metadata, sample_image_metadata
from rawmamba.metadata.io import (
    FORMAT_VERSION,
    LAYOUTS,
    load_metadata,
    read_metadata_info,
    save_metadata,
)
from rawmamba.metadata.samplers import (
    SAMPLERS,
    Sampler,
    grid_budget,
    grid_mask,
    make_sampler,
    random_mask,
    superpixel_mask,
)

__all__ = [
    "FORMAT_VERSION",
    "LAYOUTS",
    "RAW_CHANNELS",
    "SAMPLERS",
    "Metadata",
    "Sampler",
    "first_frame_metadata",
    "grid_budget",
    "grid_mask",
    "load_metadata",
    "make_sampler",
    "random_mask",
    "read_metadata_info",
    "sample_image_metadata",
    "save_metadata",
    "superpixel_mask",
]
