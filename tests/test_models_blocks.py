"""Tests of the RAWMamba building blocks: padding, positional encoding, optical flow, deformable
attention, encoders, UME and search block."""

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError
from rawmamba.models import encoders
from rawmamba.models.decoder import Decoder3d, base_colour_map, tone_curve
from rawmamba.models.deformable_attention import DeformableAttention, deformable_attention
from rawmamba.models.encoders import ConvNeXtEncoder, masked_cell_pool
from rawmamba.models.optical_flow import dis_flow, downsample_flow, flow_warp
from rawmamba.models.padding import crop_to, pad_to_multiple
from rawmamba.models.positional_encoding import pixel_grid, sinusoidal_pe_2d
from rawmamba.models.search_block import SearchBlock
from rawmamba.models.ume import GlobalEmbeddingBlock, LocalEmbeddingBlock, UnifiedMetadataEmbedding

TINY_ENCODER = {"backbone": "convnext_atto", "depths": (1, 1, 1, 1), "dims": (8, 16, 32, 64)}


@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
def test_pad_to_multiple_and_crop_back(mode):
    x = torch.rand(2, 5, 3, 13, 21)
    padded = pad_to_multiple(x, 8, mode=mode)
    assert padded.shape == (2, 5, 3, 16, 24)
    assert torch.equal(crop_to(padded, 13, 21), x)
    if mode == "constant":
        assert padded[..., 13:, :].abs().sum() == 0 and padded[..., :, 21:].abs().sum() == 0
    if mode == "reflect":  # mirror without repeating the edge row
        assert torch.equal(padded[..., 13, :21], x[..., 11, :])


def test_pad_reflect_falls_back_when_side_is_too_small():
    x = torch.rand(1, 3, 2, 3)
    padded = pad_to_multiple(x, 32)
    assert padded.shape == (1, 3, 32, 32)
    assert torch.equal(padded[..., 31, 31], x[..., 1, 2])  # replicate


def test_pad_rejects_bad_arguments():
    with pytest.raises(RawMambaError):
        pad_to_multiple(torch.rand(1, 3, 4, 4), 4, mode="wrap")
    with pytest.raises(RawMambaError):
        pad_to_multiple(torch.rand(1, 3, 4, 4), 0)


def test_sinusoidal_pe_is_translation_covariant():
    grid = pixel_grid(5, 7)
    pe = sinusoidal_pe_2d(grid, 16)
    assert pe.shape == (16, 5, 7)
    assert pe.abs().max() <= 1.0
    # the encoding of a shifted coordinate grid equals the encoding read at the shifted pixel
    shifted = sinusoidal_pe_2d(grid + torch.tensor([2.0, 1.0]).view(2, 1, 1), 16)
    assert torch.allclose(shifted[:, :4, :5], pe[:, 1:, 2:], atol=1e-5)
    # the dot product of encodings peaks at zero displacement
    centre = pe[:, 2, 3]
    dots = torch.einsum("c,chw->hw", centre, pe)
    assert dots.argmax().item() == 2 * 7 + 3
    with pytest.raises(RawMambaError):
        sinusoidal_pe_2d(grid, 10)


def test_flow_warp_is_exact_for_integer_translation():
    image = torch.rand(2, 3, 20, 24)
    dx, dy = 2, -3
    flow = torch.zeros(2, 2, 20, 24)
    flow[:, 0], flow[:, 1] = dx, dy
    out = flow_warp(image, flow)
    # out[y, x] = image[y + dy, x + dx] wherever that lies inside the image
    expected = torch.zeros_like(image)
    expected[:, :, 3:, : 24 - 2] = image[:, :, : 20 - 3, 2:]
    assert torch.allclose(out, expected, atol=1e-6), f"{(out - expected).abs().max()}"


def test_flow_warp_zero_flow_is_identity_and_rejects_bad_shapes():
    image = torch.rand(1, 4, 9, 11)
    assert torch.allclose(flow_warp(image, torch.zeros(1, 2, 9, 11)), image, atol=1e-6)
    with pytest.raises(RawMambaError):
        flow_warp(image, torch.zeros(1, 2, 8, 11))


def test_downsample_flow_scales_vectors():
    flow = torch.full((1, 2, 16, 16), 8.0)
    coarse = downsample_flow(flow, 8)
    assert coarse.shape == (1, 2, 2, 2) and torch.allclose(coarse, torch.ones_like(coarse))
    with pytest.raises(RawMambaError):
        downsample_flow(torch.zeros(1, 2, 10, 16), 8)


def test_dis_flow_recovers_a_translation():
    gen = torch.Generator().manual_seed(1)
    big = F.interpolate(torch.rand(1, 3, 24, 24, generator=gen), size=(96, 96), mode="bicubic").clamp(0, 1)
    dx, dy = 3, -2
    reference = big[:, :, 10:74, 10:74]
    frame = big[:, :, 10 + dy : 74 + dy, 10 + dx : 74 + dx]  # frame(p) = reference(p + (dx, dy))
    flow = dis_flow(torch.stack((reference, frame), dim=1), reference, preset="medium")
    assert flow.shape == (1, 2, 2, 64, 64)
    inner = flow[0, 1, :, 12:-12, 12:-12].flatten(1).median(dim=1).values
    assert torch.allclose(inner, torch.tensor([dx, dy], dtype=torch.float32), atol=0.3), inner
    assert flow[0, 0].abs().max() < 0.5  # the reference against itself
    with pytest.raises(RawMambaError):
        dis_flow(frame.unsqueeze(1), reference, preset="slow")


def _bilinear_reference(value: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Bilinear read of value (C, H, W) at (x, y), zero outside, written out by hand."""
    c, h, w = value.shape
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    out = torch.zeros(c)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * value[:, yy, xx]
    return out


def test_deformable_attention_with_zero_offsets_is_bilinear_sampling_at_reference():
    n, length, c, heads, points = 2, 5, 8, 2, 3
    query = torch.randn(n, length, c)
    key, value = torch.randn(n, c, 6, 7), torch.randn(n, c, 6, 7)
    reference = torch.rand(n, length, 2) * torch.tensor([6.0, 5.0])
    offsets = torch.zeros(n, length, heads, points, 2)
    out = deformable_attention(query, key, value, reference, offsets, torch.randn(n, length, heads, points))
    for i in range(n):
        for j in range(length):
            expected = _bilinear_reference(value[i], reference[i, j, 0].item(), reference[i, j, 1].item())
            assert torch.allclose(out[i, j], expected, atol=1e-5), f"{(out[i, j] - expected).abs().max()}"


def test_deformable_attention_ignores_invalid_locations():
    n, c = 1, 4
    value = torch.zeros(n, c, 5, 5)
    value[..., 2, 3] = 1.0  # right of the reference (2, 2): invalid
    value[..., 2, 1] = 5.0  # left of the reference: valid
    valid = torch.ones(n, 1, 5, 5)
    valid[..., 2, 3] = 0.0
    reference = torch.tensor([[[2.0, 2.0]]])
    offsets = torch.tensor([[[[[1.0, 0.0], [-1.0, 0.0]]]]])  # one head, points at x+1 and x-1
    out = deformable_attention(
        torch.zeros(n, 1, c), torch.zeros(n, c, 5, 5), value, reference, offsets, torch.zeros(n, 1, 1, 2), valid=valid
    )
    assert torch.allclose(out, torch.full((1, 1, c), 5.0), atol=1e-3)


def test_deformable_attention_module_shapes_and_gradients():
    attn = DeformableAttention(8, heads=2, points=3)
    q, k, v = (torch.randn(2, 8, 5, 6, requires_grad=True) for _ in range(3))
    out = attn(q, k, v)
    assert out.shape == (2, 8, 5, 6)
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attn.parameters())


def test_masked_cell_pool_keeps_only_samples():
    feats = torch.arange(64.0).view(1, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 1, 2] = 1.0  # one sample in the top-left 4x4 cell
    pooled, valid = masked_cell_pool(feats, mask, 4)
    assert pooled.shape == (1, 1, 2, 2)
    assert pooled[0, 0, 0, 0] == feats[0, 0, 1, 2] and pooled[0, 0, 1, 1] == 0
    assert valid.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
    dense, dense_valid = masked_cell_pool(feats, None, 4)
    assert torch.allclose(dense, F.avg_pool2d(feats, 4)) and dense_valid.all()


def test_geb_ignores_values_of_empty_cells():
    geb = GlobalEmbeddingBlock(8, heads=2)
    query, key, value = torch.randn(2, 3, 8, 4, 4), torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    valid = (torch.rand(2, 1, 4, 4) > 0.5).float()
    valid[:, :, 0, 0] = 1.0
    out = geb(query, key, value, valid)
    assert out.shape == (2, 3, 8, 4, 4)
    changed = value + 10.0 * (1 - valid)  # only empty cells change
    assert torch.allclose(geb(query, key, changed, valid), out, atol=1e-5)
    assert not torch.allclose(geb(query, key, value + 1.0, valid), out, atol=1e-3)
    chunked = GlobalEmbeddingBlock(8, heads=2, query_chunk=7)
    chunked.load_state_dict(geb.state_dict())
    assert torch.allclose(chunked(query, key, value, valid), out, atol=1e-5)


def test_leb_zero_flow_equals_aligned_metadata():
    leb = LocalEmbeddingBlock(16, heads=2, points=2)
    query, key, value = torch.randn(1, 2, 16, 5, 6), torch.randn(1, 16, 5, 6), torch.randn(1, 16, 5, 6)
    valid = torch.ones(1, 1, 5, 6)
    aligned = leb(query, key, value, valid, None)
    zero = leb(query, key, value, valid, torch.zeros(1, 2, 2, 5, 6))
    assert aligned.shape == (1, 2, 16, 5, 6)
    assert torch.allclose(aligned, zero, atol=1e-4), f"{(aligned - zero).abs().max()}"
    moved = leb(query, key, value, valid, torch.full((1, 2, 2, 5, 6), 1.0))
    assert not torch.allclose(aligned, moved, atol=1e-3)


def test_ume_requires_a_branch_and_embeds_every_frame():
    with pytest.raises(RawMambaError):
        UnifiedMetadataEmbedding(16, 3, dim=16, use_geb=False, use_leb=False)
    ume = UnifiedMetadataEmbedding(16, 4, dim=16, cell=8, meta_hidden=8, leb_heads=2, leb_points=2)
    frames = torch.rand(2, 3, 3, 32, 40)
    meta_raw, meta_mask = torch.rand(2, 4, 32, 40), torch.ones(2, 1, 32, 40)
    out = ume(torch.randn(2, 3, 16, 4, 5), frames, frames[:, 0], meta_raw, meta_mask, None)
    assert out.shape == (2, 3, 16, 4, 5) and torch.isfinite(out).all()


def test_search_block_reads_the_embedding():
    block = SearchBlock(16, 8, heads=2)
    x, emb = torch.randn(2, 16, 8, 8), torch.randn(2, 8, 4, 4)
    out = block(x, emb)
    assert out.shape == x.shape
    assert not torch.allclose(block(x, torch.randn_like(emb)), out, atol=1e-4)
    assert block(x, torch.randn(2, 8, 16, 16)).shape == x.shape  # larger context is pooled


def test_convnext_encoder_features_and_local_weights(tmp_path):
    enc = ConvNeXtEncoder(**TINY_ENCODER)
    feats = enc(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64] and enc.reductions == [4, 8, 16, 32]
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    # a classifier-layout checkpoint (as published for ImageNet) loads from a local file
    source = timm.create_model("convnext_atto", pretrained=False, depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))
    path = tmp_path / "convnext.pth"
    torch.save(source.state_dict(), path)
    loaded = ConvNeXtEncoder(**TINY_ENCODER, weights=path)
    assert torch.equal(loaded.backbone.state_dict()["stem_0.weight"], source.state_dict()["stem.0.weight"])
    fc2 = "blocks.0.mlp.fc2.weight"
    assert torch.equal(loaded.backbone.state_dict()[f"stages_3.{fc2}"], source.state_dict()[f"stages.3.{fc2}"])
    with pytest.raises(RawMambaError, match="not found"):
        ConvNeXtEncoder(**TINY_ENCODER, weights=tmp_path / "missing.pth")
    with pytest.raises(RawMambaError, match="does not match"):
        ConvNeXtEncoder(backbone="convnext_atto", depths=(1, 1, 1, 1), dims=(16, 32, 64, 128), weights=path)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RawMambaError, match="cannot read"):
        ConvNeXtEncoder(**TINY_ENCODER, weights=bad)


def test_tone_curve_interpolates_its_knots():
    knots = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.1, 0.9], [1.0, 0.0, 1.0]])
    x = torch.tensor([0.0, 0.25, 0.5, 1.0]).view(1, 1, 4).expand(3, 1, 4)
    out = tone_curve(x, knots)
    expected = torch.tensor([[0.0, 0.25, 0.5, 1.0], [0.0, 0.05, 0.1, 0.9], [1.0, 0.5, 0.0, 1.0]]).view(3, 1, 4)
    assert torch.allclose(out, expected)


@pytest.mark.parametrize("raw_channels", [3, 4])
def test_decoder_starts_from_the_base_colour_map(raw_channels):
    dec = Decoder3d(16, raw_channels, reduction=4, dims=(8, 8, 8))
    torch.nn.init.zeros_(dec.head.weight)  # coefficients = the initial bias: base map, no offset
    frames = torch.rand(2, 3, 3, 32, 36)
    out = dec(torch.randn(2, 16, 3, 8, 9), frames)
    assert out.shape == (2, 3, raw_channels, 32, 36)
    expected = torch.einsum("rc,btchw->btrhw", base_colour_map(raw_channels), tone_curve(frames, dec.curve))
    assert torch.allclose(out, expected.clamp(0, 1), atol=1e-6)
    assert torch.allclose(tone_curve(frames, dec.curve), frames**2.2, atol=2e-3)
    with pytest.raises(RawMambaError):
        Decoder3d(16, 3, reduction=4, dims=(8, 8))


@pytest.mark.parametrize("raw_channels", [3, 4])
def test_decoder_with_prior_starts_at_the_prior_and_reads_it(raw_channels):
    dec = Decoder3d(16, raw_channels, reduction=4, dims=(8, 8, 8), prior=True)
    assert dec.curve is None and dec.stem[-1][0].in_channels == 3 + raw_channels
    frames = torch.rand(2, 3, 3, 32, 36)
    prior = torch.rand(2, 3, raw_channels, 32, 36) * 1.2 - 0.1  # beyond [0, 1]: the output is clamped
    features = torch.randn(2, 16, 3, 8, 9)
    assert torch.equal(dec(features, frames, prior), prior.clamp(0, 1))
    torch.nn.init.normal_(dec.head.weight, std=0.05)  # as after training: the correction reads the prior
    other = prior.flip(-1)
    assert not torch.allclose(dec(features, frames, prior) - prior, dec(features, frames, other) - other)
    with pytest.raises(RawMambaError, match="needs a prior"):
        dec(features, frames)
    with pytest.raises(RawMambaError, match="needs no prior"):
        Decoder3d(16, raw_channels, reduction=4, dims=(8, 8, 8))(features, frames, prior)


@pytest.mark.parametrize("prior,frames_count,size", [(False, 3, (70, 36)), (True, 1, (70, 36)), (True, 3, (69, 35))])
def test_decoder_in_strips_equals_one_pass(monkeypatch, prior, frames_count, size):
    # CPU inference runs the full-resolution stage (upsampling, sRGB skip, join, block, head) in strips of rows
    # with halos: the same output as one pass (strips of 16 rows, the last one partial; batch of 2; 69 rows: an
    # upsampling from 35 rows, not by 2)
    from rawmamba.models import decoder

    torch.manual_seed(0)
    dec = Decoder3d(16, 4, reduction=4, dims=(8, 8, 8), prior=prior).eval()
    torch.nn.init.normal_(dec.head.weight, std=0.2)  # a head that reads its features
    frames = torch.rand(2, frames_count, 3, *size)
    prior_raw = torch.rand(2, frames_count, 4, *size) if prior else None
    features = torch.randn(2, 16, frames_count, 18, 9)
    with torch.enable_grad():  # autograd records: one pass
        assert decoder.strip_rows(frames) == size[0]
        want = dec(features, frames, prior_raw).detach()
    with torch.no_grad():
        assert decoder.strip_rows(frames) == size[0]  # small: one pass
    monkeypatch.setattr(decoder, "STRIP_PIXELS", 16 * size[1])
    monkeypatch.setattr(decoder, "STRIPS_FROM", 0)
    with torch.no_grad():
        assert decoder.strip_rows(frames) == 16
        got = dec(features, frames, prior_raw)
    assert (got - want).abs().max() < 1e-6
    assert 0.05 < (want > 0).float().mean() < 0.99  # the clamp does not hide the comparison


@pytest.mark.parametrize("density", [None, 0.05, 0.5])
def test_metadata_encoder_equals_pooling_its_mlp_output(monkeypatch, density):
    # the encoder pools before the MLP's last layer and groups its images, or (a sparse mask on the CPU) encodes
    # the samples alone: the same map as pooling the MLP's output (eq. 8), empty cells 0, also across groups
    # (3 images of 16x16 pixels, 2 per call), gradients included
    monkeypatch.setattr(encoders, "PIXELS_PER_CALL", 2 * 16 * 16)
    encoder = encoders.MetadataEncoder(3, 5, hidden=6, cell=4).double()
    with torch.no_grad():
        encoder.mlp[2].bias.uniform_(0.5, 1.0)  # a bias that would show in an empty cell
    image = torch.rand(3, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    mask = None if density is None else (torch.rand(3, 1, 16, 16) < density).double()
    if mask is not None:
        mask[:, :, :4, :4] = 0.0  # one empty cell in every image
        mask[:, :, 4, 4] = 1.0  # and at least one sampled cell
    sampled = []
    monkeypatch.setattr(encoder, "pool_samples", lambda *a, f=encoder.pool_samples: sampled.append(1) or f(*a))
    features, valid = encoder(image, mask)
    assert bool(sampled) == (density == 0.05)  # the sparse mask takes the sample path
    expected, expected_valid = masked_cell_pool(encoder.mlp(image), mask, 4)
    assert features.shape == (3, 5, 4, 4) and torch.equal(valid, expected_valid)
    torch.testing.assert_close(features, expected, rtol=1e-12, atol=1e-12)
    if mask is not None:
        assert (features[:, :, 0, 0] == 0).all() and (features[:, :, 1, 1] != 0).all()
    params = [image, *encoder.parameters()]
    grads = torch.autograd.grad(features.square().sum(), params)
    expected_grads = torch.autograd.grad(expected.square().sum(), params)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_metadata_encoder_samples_outside_whole_cells_are_ignored_as_by_pooling():
    """Sizes that are not multiples of the cell: the pooling reads the whole cells only, so does the sample path."""
    torch.manual_seed(3)
    encoder = encoders.MetadataEncoder(3, 4, hidden=5, cell=4).double()
    image = torch.rand(2, 3, 18, 17, dtype=torch.float64)
    mask = torch.zeros(2, 1, 18, 17, dtype=torch.float64)
    mask[:, :, ::5, ::5] = 1.0
    mask[:, :, 17, 16] = 1.0  # beyond the last whole cell in both directions
    hidden, valid = encoder.pool_samples(image, mask)
    first, activation, _ = encoder.mlp
    expected, expected_valid = masked_cell_pool(activation(first(image)), mask, 4)
    assert hidden.shape == (2, 5, 4, 4) and torch.equal(valid, expected_valid)
    torch.testing.assert_close(hidden, expected, rtol=1e-12, atol=1e-12)
