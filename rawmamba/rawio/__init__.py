"""rawmamba.rawio: real files. Camera RAW in (LibRaw via rawpy, headerless dumps), DNG out.

``read`` (``open_raw``, ``RawFile``, ``RawInfo``, ``HeaderlessLayout``), ``dng`` (``write_dng``),
``capture`` (render + metadata + camera JSON at capture time; training sets from RAW folders),
``video`` (RAW frame sequences), ``cli`` (``rawmamba capture``, ``rawmamba data from-raw``).
"""

from rawmamba.rawio.read import HeaderlessLayout, RawFile, RawInfo, open_raw

__all__ = ["HeaderlessLayout", "RawFile", "RawInfo", "open_raw"]
