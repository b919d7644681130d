"""Camera profiles and the full pipeline: exact global inverse, determinism, batching, NaN policy."""

import numpy as np
import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp import (
    CAMERAS,
    Camera,
    NoiseLevels,
    Shot,
    get_camera,
    plain_look,
    random_camera,
    render,
    render_with_shot,
    unprocess,
    unprocess_photo,
)

RANDOM_CAMERAS = [random_camera(torch.Generator().manual_seed(seed)) for seed in range(4)]
ALL_CAMERAS = list(CAMERAS.values()) + RANDOM_CAMERAS


def _scene(shot: Shot, seed: int = 0, size: int = 24) -> torch.Tensor:
    """Raw that is near-neutral after white balance, mid-grey to light: nothing clips in any camera."""
    gen = torch.Generator().manual_seed(seed)
    level = 0.06 + 0.3 * torch.rand(2, 1, size, size, generator=gen)
    colour = 1 + 0.2 * (torch.rand(2, 3, size, size, generator=gen) - 0.5)
    gains = torch.tensor(shot.wb_gains).view(3, 1, 1) * shot.exposure
    return (level * colour / gains).clamp(max=1.0)


@pytest.mark.parametrize("camera", ALL_CAMERAS, ids=lambda c: c.name)
def test_unprocess_inverts_render(camera):
    gen = torch.Generator().manual_seed(1)
    shot = camera.draw_shot(gen)
    raw = _scene(shot)
    srgb, used = render_with_shot(raw, camera, gen, shot=shot, local_tone=False, quantize=False)
    assert used == shot
    assert 0.02 < float(srgb.min()) and float(srgb.max()) < 0.995, "test scene must not clip"
    back = unprocess(srgb, camera, shot)
    rel = ((back - raw).abs() / raw).max()
    assert rel < 1e-3, f"{camera.name}: relative error {rel}"


def test_every_camera_renders_differently_and_local_tone_matters():
    gen = torch.Generator().manual_seed(0)
    raw = torch.rand(1, 3, 32, 32, generator=gen) * 0.4
    shot = Shot(wb_gains=(2.0, 1.0, 1.6), exposure=1.0)
    outs = {c.name: render(raw, c, gen, shot=shot, quantize=False) for c in CAMERAS.values()}
    names = sorted(outs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert (outs[a] - outs[b]).abs().mean() > 1e-3, (a, b)
    camera = get_camera("Sony SLT-A57")
    with_local = render(raw, camera, gen, shot=shot, quantize=False)
    without = render(raw, camera, gen, shot=shot, quantize=False, local_tone=False)
    assert (with_local - without).abs().max() > 1e-2


def test_output_range_quantisation_and_jpeg():
    camera = get_camera("samsung")
    raw = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    srgb = render(raw, camera, torch.Generator().manual_seed(0))
    assert srgb.shape == raw.shape and srgb.dtype == raw.dtype
    assert srgb.min() >= 0 and srgb.max() <= 1 and torch.equal(srgb * 255, torch.round(srgb * 255))
    hi_bits = render(raw, camera, torch.Generator().manual_seed(0), bits=16)
    assert (hi_bits - srgb).abs().max() <= 0.5 / 255 + 1e-6
    jpeg = render(raw, camera, torch.Generator().manual_seed(0), jpeg=True)
    jpeg_low = render(raw, camera, torch.Generator().manual_seed(0), jpeg=10)
    assert 0 < (jpeg - srgb).abs().mean() < (jpeg_low - srgb).abs().mean()


def test_deterministic_from_seed_torch_and_numpy():
    camera = RANDOM_CAMERAS[0]
    raw = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    a = render_with_shot(raw, camera, torch.Generator().manual_seed(5), noise=True)
    b = render_with_shot(raw, camera, torch.Generator().manual_seed(5), noise=True)
    c = render_with_shot(raw, camera, torch.Generator().manual_seed(6), noise=True)
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[1] != c[1]
    n1 = render(raw, camera, np.random.default_rng(2))
    n2 = render(raw, camera, np.random.default_rng(2))
    assert torch.equal(n1, n2)
    assert random_camera(torch.Generator().manual_seed(3)) == random_camera(torch.Generator().manual_seed(3))
    assert random_camera(torch.Generator().manual_seed(3)) != random_camera(torch.Generator().manual_seed(4))


def test_vectorised_over_leading_dims():
    camera = get_camera("olympus")
    shot = camera.draw_shot(torch.Generator().manual_seed(0))
    raw = torch.rand(2, 2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.5
    batch = render(raw, camera, torch.Generator(), shot=shot, quantize=False)
    single = render(raw[1, 0], camera, torch.Generator(), shot=shot, quantize=False)
    assert batch.shape == raw.shape
    assert torch.allclose(batch[1, 0], single, atol=1e-5)
    back = unprocess(batch, camera, shot)
    assert back.shape == raw.shape


def test_noise_changes_output_with_explicit_levels():
    camera = get_camera("canon eos 550d")
    raw = torch.full((1, 3, 32, 32), 0.2)
    shot = Shot(wb_gains=(2.0, 1.0, 1.5))
    clean = render(raw, camera, torch.Generator(), shot=shot, quantize=False, local_tone=False)
    noisy = render(raw, camera, torch.Generator().manual_seed(0), shot=shot, quantize=False, local_tone=False,
                   noise=NoiseLevels(1e-3, 1e-5))  # fmt: skip
    assert (noisy - clean).std() > 0.01


def test_unprocess_photo_is_plausible_raw():
    gen = torch.Generator().manual_seed(0)
    photo = torch.rand(1, 3, 24, 24, generator=gen) * 0.7 + 0.15
    camera = get_camera("nikon d750")
    raw, shot = unprocess_photo(photo, camera, gen, return_shot=True)
    assert raw.shape == photo.shape and raw.min() >= 0 and raw.max() <= 1
    # white balance undone: the green channel dominates as in real raw
    assert raw[:, 1].mean() > raw[:, 0].mean() and raw[:, 1].mean() > raw[:, 2].mean()
    again = render(raw, camera, gen, shot=shot, local_tone=False, quantize=False)
    unclipped = (raw > 0) & (raw < 1)
    mask = unclipped.all(dim=1, keepdim=True).expand_as(photo)
    assert torch.allclose(again[mask], photo[mask], atol=2e-3)


def test_get_camera_names_and_errors():
    assert get_camera("canon eos 5d mark iii") is CAMERAS["Canon EOS 5D Mark III"]
    assert get_camera("SonyA57") is CAMERAS["Sony SLT-A57"]
    assert get_camera("OlympusEPL6") is CAMERAS["Olympus E-PL6"]
    with pytest.raises(RawMambaError, match="Samsung NX2000"):
        get_camera("Leica M3")
    with pytest.raises(RawMambaError, match="tone_mode"):
        Camera(name="x", xyz_to_camera=(1, 0, 0, 0, 1, 0, 0, 0, 1), tone_mode="hsv")


def test_shot_draws_follow_camera_ranges():
    camera = get_camera("sony ilce-7m3")
    gen = torch.Generator().manual_seed(0)
    shots = [camera.draw_shot(gen) for _ in range(50)]
    assert all(camera.cct_range[0] - 1 <= s.cct <= camera.cct_range[1] + 1 for s in shots)
    ev = np.log2([s.exposure for s in shots])
    assert ev.min() >= camera.exposure_range[0] and ev.max() <= camera.exposure_range[1]
    warm = min(shots, key=lambda s: s.cct)
    cool = max(shots, key=lambda s: s.cct)
    assert warm.wb_gains[2] / warm.wb_gains[0] > cool.wb_gains[2] / cool.wb_gains[0]


def test_nan_and_bad_input_raise_clear_errors():
    camera = get_camera("samsung")
    raw = torch.rand(1, 3, 8, 8)
    raw[0, 0, 0, 0] = float("nan")
    with pytest.raises(RawMambaError, match="raw contains NaN"):
        render(raw, camera, torch.Generator())
    with pytest.raises(RawMambaError, match="srgb contains NaN"):
        unprocess(raw, camera, Shot(wb_gains=(2.0, 1.0, 1.5)))
    with pytest.raises(RawMambaError, match=r"\(\*, 3, H, W\)"):
        render(torch.rand(1, 4, 8, 8), camera, torch.Generator())
    with pytest.raises(RawMambaError, match="Generator"):
        render(torch.rand(1, 3, 8, 8), camera, rng=0)


def test_plain_look_renders_every_pixel_by_the_same_global_map():
    camera = plain_look(get_camera("Canon EOS 550D"))
    assert camera.local_tone is None and camera.vignette == 0.0
    raw = torch.rand(3, 24, 24) * 0.8
    raw[:, :, 12:] = raw[:, :, :12]  # the right half repeats the left half in other surroundings
    shot = camera.draw_shot(torch.Generator().manual_seed(0))
    srgb = render(raw, camera, torch.Generator().manual_seed(1), shot=shot, quantize=False)
    assert torch.allclose(srgb[:, :, 12:], srgb[:, :, :12], atol=1e-6)
    full = render(raw, get_camera("Canon EOS 550D"), torch.Generator().manual_seed(1), shot=shot, quantize=False)
    assert not torch.allclose(full[:, :, 12:], full[:, :, :12], atol=1e-3)  # the full look is local
