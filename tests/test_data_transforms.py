"""RandomCropFlip: sRGB, RAW (raw-RGB and packed Bayer), metadata mask and flow stay consistent."""

import pytest
import torch
import torch.nn.functional as F

from rawmamba.data.transforms import RandomCropFlip
from rawmamba.errors import RawMambaError
from rawmamba.isp.cfa import CFA, pack, unpack


def _translation_item(h=24, w=32, shift=(3, -2)):
    """Two frames: frame 1 is the reference shifted so that frame1(x, y) = ref(x + u, y + v) exactly."""
    u, v = shift
    big = torch.rand(3, h + 20, w + 20)
    ref = big[:, 10:10 + h, 10:10 + w]
    frame = big[:, 10 + v:10 + v + h, 10 + u:10 + u + w]
    flow = torch.zeros(2, 2, h, w)
    flow[1, 0], flow[1, 1] = u, v
    srgb = torch.stack([ref, frame])
    return {"srgb": srgb, "raw": srgb.clone(), "meta_srgb": ref.clone(), "meta_raw": ref.clone(), "flow": flow,
            "name": "t"}


def _check_warp(item):
    """frame1[y, x] == meta[y + v, x + u] wherever the reference position is inside the image."""
    u, v = (int(item["flow"][1, c].unique().item()) for c in range(2))
    h, w = item["srgb"].shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    inside = (ys + v >= 0) & (ys + v < h) & (xs + u >= 0) & (xs + u < w)
    warped = item["meta_srgb"][:, (ys + v).clamp(0, h - 1), (xs + u).clamp(0, w - 1)]
    assert torch.equal(warped[:, inside], item["srgb"][1][:, inside])
    return u, v


def test_flow_follows_flips_and_transposes():
    transform = RandomCropFlip(size=(16, 16), transpose=True)
    item = _translation_item(shift=(3, -2))
    seen = set()
    for seed in range(40):
        out = transform(item, torch.Generator().manual_seed(seed))
        assert out["srgb"].shape == (2, 3, 16, 16) and out["flow"].shape == (2, 2, 16, 16)
        assert torch.equal(out["raw"], out["srgb"]) and out["name"] == "t"
        assert torch.equal(out["flow"][0], torch.zeros(2, 16, 16))
        seen.add(_check_warp(out))
    # Each flip negates one component; a transposition swaps them: all eight variants of (3, -2) occur.
    expected = {(a * 3, b * -2) for a in (1, -1) for b in (1, -1)} | {(b * -2, a * 3) for a in (1, -1) for b in (1, -1)}
    assert seen == expected


def test_flipped_translation_equals_flow_of_flipped_pair():
    item = _translation_item(shift=(4, 1))
    out = RandomCropFlip(size=None, hflip=True, vflip=False)(item, _first_draw_below_half())
    flipped = {k: (v.flip(-1) if isinstance(v, torch.Tensor) else v) for k, v in item.items()}
    # The flipped pair is a translation by (-4, 1): its flow is the flipped item's flow with u negated.
    assert torch.equal(out["srgb"], flipped["srgb"])
    assert torch.all(out["flow"][1, 0] == -4) and torch.all(out["flow"][1, 1] == 1)
    assert _check_warp(out) == (-4, 1)


def _first_draw_below_half():
    """A generator whose first uniform draw is below 1/2: the first enabled random choice (flips are drawn
    vertical, horizontal, transpose, each only if enabled) is taken."""
    seed = next(s for s in range(100) if torch.rand((), generator=torch.Generator().manual_seed(s)) < 0.5)
    return torch.Generator().manual_seed(seed)


def _id_bayer_item(h=16, w=20):
    """Packed RGGB RAW whose values are the full-resolution pixel ids, and a half-resolution 'sRGB' holding
    each block's mean x, y coordinate (the exact bilinear half-size of the coordinate images)."""
    ys, xs = torch.meshgrid(torch.arange(2 * h, dtype=torch.float64), torch.arange(2 * w, dtype=torch.float64),
                            indexing="ij")
    ids = (ys * (2 * w) + xs)[None]
    raw = pack(ids, CFA.RGGB)
    coords = torch.stack([xs, ys, xs])
    srgb = F.interpolate(coords[None], scale_factor=0.5, mode="bilinear", align_corners=False)[0]
    return {"srgb": srgb[None], "raw": raw[None], "meta_srgb": srgb.clone(), "meta_raw": raw.clone(), "name": "b"}, w


@pytest.mark.parametrize("transpose", [False, True])
def test_packed_bayer_flips_keep_the_pattern(transpose):
    item, w = _id_bayer_item(16, 20)
    size = (12, 12) if transpose else (12, 15)
    transform = RandomCropFlip(size=size, transpose=transpose)
    flips = set()
    for seed in range(24):
        out = transform(item, torch.Generator().manual_seed(seed))
        assert out["raw"].shape == (1, 4, *size) and out["srgb"].shape == (1, 3, *size)
        ids = unpack(out["raw"][0], CFA.RGGB)[0]
        src_y, src_x = torch.div(ids, 2 * w, rounding_mode="floor"), ids % (2 * w)
        oy, ox = torch.meshgrid(torch.arange(ids.shape[0]), torch.arange(ids.shape[1]), indexing="ij")
        # Every output mosaic pixel comes from a source pixel of the same colour (R stays R, B stays B, G
        # stays G); without a transposition even the same site (Gr stays Gr).
        tile = torch.tensor(CFA.RGGB.tile)
        assert torch.equal(tile[src_y.long() % 2, src_x.long() % 2], tile[oy % 2, ox % 2])
        if not transpose:
            assert torch.equal(src_y % 2, (oy % 2).double()) and torch.equal(src_x % 2, (ox % 2).double())
        # The map is a rigid reflection/translation: neighbours stay neighbours (one step along one axis).
        step_x = (src_x[:, 1:] - src_x[:, :-1]).abs() + (src_y[:, 1:] - src_y[:, :-1]).abs()
        step_y = (src_x[1:] - src_x[:-1]).abs() + (src_y[1:] - src_y[:-1]).abs()
        assert torch.all(step_x == 1) and torch.all(step_y == 1)
        flips.add((bool(src_x[0, 1] < src_x[0, 0]) or bool(src_y[0, 1] < src_y[0, 0]),
                   bool(src_y[1, 0] < src_y[0, 0]) or bool(src_x[1, 0] < src_x[0, 0])))
        # The half-resolution sRGB sits exactly on the output blocks: its mean source coordinates.
        block = F.avg_pool2d(torch.stack([src_x, src_y])[None], 2)[0]
        assert torch.allclose(out["srgb"][0, :2], block), "sRGB misaligned with the packed RAW"
        assert torch.equal(out["meta_raw"], out["raw"][0]) and torch.allclose(out["meta_srgb"], out["srgb"][0])
    assert flips == {(a, b) for a in (False, True) for b in (False, True)}


def test_naive_packed_flip_would_break_the_geometry():
    """The rigidity check above is not vacuous: mirroring the packed planes scrambles mosaic neighbours."""
    item, w = _id_bayer_item(4, 4)
    src_x = unpack(item["raw"][0].flip(-1), CFA.RGGB)[0] % (2 * w)
    assert not torch.all((src_x[:, 1:] - src_x[:, :-1]).abs() == 1)


@pytest.mark.parametrize("channels", [3, 4])
def test_mask_and_metadata_stay_consistent(channels):
    h, w = 20, 24
    srgb = torch.rand(1, 3, h, w)
    raw = torch.rand(1, channels, h, w)
    mask = (torch.rand(1, h, w) < 0.2).float()
    item = {"srgb": srgb, "raw": raw, "meta_srgb": srgb[0] * mask, "meta_raw": raw[0] * mask, "meta_mask": mask}
    for seed in range(12):
        out = RandomCropFlip(size=(12, 16))(item, torch.Generator().manual_seed(seed))
        m = out["meta_mask"]
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        assert torch.allclose(out["meta_srgb"], out["srgb"][0] * m)
        assert torch.allclose(out["meta_raw"], out["raw"][0] * m)


def test_raw_rgb_flip_is_a_plain_flip_and_deterministic():
    srgb = torch.rand(1, 3, 10, 14)
    item = {"srgb": srgb, "raw": srgb * 0.5}
    a = RandomCropFlip(size=(8, 8))(item, torch.Generator().manual_seed(5))
    b = RandomCropFlip(size=(8, 8))(item, torch.Generator().manual_seed(5))
    assert torch.equal(a["srgb"], b["srgb"]) and torch.equal(a["raw"], a["srgb"] * 0.5)
    full = RandomCropFlip(size=None, vflip=False)(item, _first_draw_below_half())
    assert torch.equal(full["srgb"], srgb.flip(-1))


def test_bad_arguments_raise():
    with pytest.raises(RawMambaError, match="square"):
        RandomCropFlip(size=(8, 12), transpose=True)
    with pytest.raises(RawMambaError, match="does not fit"):
        RandomCropFlip(size=(64, 64))({"srgb": torch.rand(1, 3, 8, 8), "raw": torch.rand(1, 3, 8, 8)},
                                      torch.Generator())
    with pytest.raises(RawMambaError, match="different spatial sizes"):
        RandomCropFlip()({"srgb": torch.rand(1, 3, 8, 8), "raw": torch.rand(1, 3, 8, 6)}, torch.Generator())
    item, _ = _id_bayer_item(4, 4)
    with pytest.raises(RawMambaError, match="GRBG"):
        RandomCropFlip(size=(3, 3), transpose=True, hflip=False, vflip=False, cfa="GRBG")(
            item, _first_draw_below_half())
