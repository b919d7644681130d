"""Output encoding: integer quantisation and a JPEG round trip on ``(*, 3, H, W)`` sRGB tensors."""

from __future__ import annotations

import io

import numpy as np
import torch

from rawmamba.errors import RawMambaError

__all__ = ["jpeg_roundtrip", "quantize"]

_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def quantize(x: torch.Tensor, *, bits: int = 8) -> torch.Tensor:
    """Round values in [0, 1] to the nearest of ``2**bits`` levels (clipping first); same dtype, NaN propagates."""
    if not 1 <= bits <= 24:
        raise RawMambaError(f"bits={bits} must be in 1..24")
    levels = float(2**bits - 1)
    return torch.round(x.clamp(0.0, 1.0) * levels) / levels


def _encode_decode_pillow(image: np.ndarray, quality: int, subsampling: str) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=_SUBSAMPLING[subsampling])
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _encode_decode_opencv(image: np.ndarray, quality: int, subsampling: str) -> np.ndarray:
    try:
        import cv2
    except ImportError as exc:
        hint = "pip install opencv-python-headless"
        raise RawMambaError(f"jpeg_roundtrip(backend='opencv') needs OpenCV: {hint}") from exc
    flags = [int(cv2.IMWRITE_JPEG_QUALITY), quality]
    if hasattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR"):
        factors = {"4:4:4": 0x111111, "4:2:2": 0x211111, "4:2:0": 0x221111}
        flags += [int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR), factors[subsampling]]
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), flags)
    if not ok:
        raise RawMambaError("OpenCV failed to encode the JPEG")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def jpeg_roundtrip(
    srgb: torch.Tensor, *, quality: int = 90, subsampling: str = "4:2:0", backend: str = "pillow"
) -> torch.Tensor:
    """Encode each ``(3, H, W)`` image of ``(*, 3, H, W)`` sRGB in [0, 1] as 8-bit JPEG and decode it.

    Args:
        srgb: encoded sRGB in [0, 1] (clipped), any leading shape; returns the same shape and dtype,
            values on the 8-bit grid.
        quality: JPEG quality 1..100 (libjpeg scale).
        subsampling: chroma subsampling, ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"`` (most cameras).
        backend: ``"pillow"`` or ``"opencv"``; both use libjpeg(-turbo), results differ slightly.
    """
    if not isinstance(srgb, torch.Tensor) or srgb.ndim < 3 or srgb.shape[-3] != 3:
        raise RawMambaError(f"srgb must be a (*, 3, H, W) tensor, got {getattr(srgb, 'shape', type(srgb))}")
    if not 1 <= quality <= 100:
        raise RawMambaError(f"quality={quality} must be in 1..100")
    if subsampling not in _SUBSAMPLING:
        raise RawMambaError(f"subsampling={subsampling!r} is not one of {list(_SUBSAMPLING)}")
    codecs = {"pillow": _encode_decode_pillow, "opencv": _encode_decode_opencv}
    if backend not in codecs:
        raise RawMambaError(f"backend={backend!r} is not one of {list(codecs)}")
    if not bool(torch.isfinite(srgb).all()):
        raise RawMambaError("srgb contains NaN or inf values, which JPEG cannot encode")
    h, w = srgb.shape[-2:]
    flat = quantize(srgb.detach()).reshape(-1, 3, h, w).permute(0, 2, 3, 1).mul(255).round().to(torch.uint8)
    decoded = [codecs[backend](image, quality, subsampling) for image in flat.cpu().numpy()]
    out = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).to(device=srgb.device, dtype=srgb.dtype) / 255
    return out.reshape(srgb.shape)
