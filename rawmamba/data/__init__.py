"""rawmamba.data: dataset readers, consistent crops/flips, synthetic data, file IO and contact sheets.

- ``CamDataset`` (CAM image layout), ``RVDDataset`` (RVD-Part2 video layout), ``PairFolderDataset``
  (``<root>/{srgb,raw}/``): items follow docs/CONVENTIONS.md (``images``, ``rvd``).
- ``RandomCropFlip``: crops, flips, transpositions that keep sRGB, RAW (packed Bayer included), metadata
  and flow consistent (``transforms``).
- ``synth_image``, ``synth_video``, ``synthesize``: synthetic data rendered through ``rawmamba.isp``
  (``synth``, ``scenes``, ``motion``); ``write_cam_pair``, ``write_rvd_frame``, ... (``writers``).
- ``contact_sheet``, ``write_contact_sheet`` (``show``). Command line: ``rawmamba data synth|show``.
"""

from rawmamba.data.images import CAM_CAMERAS, CamDataset, PairFolderDataset
from rawmamba.data.items import item_generator
from rawmamba.data.rvd import RVD_WHITE_LEVEL, RVDDataset
from rawmamba.data.scenes import BUNDLED_PHOTOS, bundled_photo, dead_leaves
from rawmamba.data.show import contact_sheet, detect_layout, visualize_raw, write_contact_sheet
from rawmamba.data.synth import SynthImage, SynthVideo, synth_image, synth_video, synthesize
from rawmamba.data.transforms import RandomCropFlip
from rawmamba.data.writers import write_cam_pair, write_rvd_frame, write_rvd_index

__all__ = [
    "BUNDLED_PHOTOS",
    "CAM_CAMERAS",
    "RVD_WHITE_LEVEL",
    "CamDataset",
    "PairFolderDataset",
    "RVDDataset",
    "RandomCropFlip",
    "SynthImage",
    "SynthVideo",
    "bundled_photo",
    "contact_sheet",
    "dead_leaves",
    "detect_layout",
    "item_generator",
    "synth_image",
    "synth_video",
    "synthesize",
    "visualize_raw",
    "write_cam_pair",
    "write_contact_sheet",
    "write_rvd_frame",
    "write_rvd_index",
]
