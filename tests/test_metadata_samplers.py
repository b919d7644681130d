"""Samplers: budgets, positions, partial cells, determinism, content awareness, the registry."""

import pytest
import torch
from skimage import data, transform

from rawmamba.errors import RawMambaError
from rawmamba.metadata import SAMPLERS, grid_budget, grid_mask, make_sampler, random_mask, superpixel_mask


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _photo(h: int = 96, w: int = 128) -> torch.Tensor:
    image = transform.resize(data.coffee(), (h, w), anti_aliasing=True)
    return torch.from_numpy(image).permute(2, 0, 1).float()


def _per_cell(mask: torch.Tensor, cell: int) -> torch.Tensor:
    _, h, w = mask.shape
    return mask.reshape(h // cell, cell, w // cell, cell).sum(dim=(1, 3))


@pytest.mark.parametrize("rng", [None, 7])
def test_grid_one_sample_per_cell(rng):
    mask = grid_mask(32, 48, rng=None if rng is None else _gen(rng))
    assert mask.shape == (1, 32, 48) and mask.dtype == torch.float32
    assert torch.equal(_per_cell(mask, 8), torch.ones(4, 6))
    assert set(mask.unique().tolist()) == {0.0, 1.0}


def test_grid_without_rng_is_centred():
    ys, xs = grid_mask(16, 16)[0].nonzero(as_tuple=True)
    assert ys.tolist() == [4, 4, 12, 12] and xs.tolist() == [4, 12, 4, 12]


def test_grid_random_positions_cover_the_cell():
    offsets = set()
    for seed in range(40):
        ys, xs = grid_mask(8, 8, rng=_gen(seed))[0].nonzero(as_tuple=True)
        offsets.add((ys.item(), xs.item()))
    assert len(offsets) > 20  # 64 possible positions, not a fixed one


def test_grid_partial_edge_cells():
    sampled = grid_mask(20, 21, rng=_gen(3))
    assert sampled.sum() == grid_budget(20, 21) == 9
    padded = torch.nn.functional.pad(sampled, (0, 3, 0, 4))  # partial cells padded to full ones
    assert torch.equal(_per_cell(padded, 8), torch.ones(3, 3))
    skipped = grid_mask(20, 21, edge="skip")
    assert skipped.sum() == grid_budget(20, 21, edge="skip") == 4
    assert skipped[:, 16:].sum() == 0 and skipped[:, :, 16:].sum() == 0
    with pytest.raises(RawMambaError, match="no full"):
        grid_mask(5, 5, edge="skip")
    with pytest.raises(RawMambaError, match="edge"):
        grid_mask(16, 16, edge="wrap")


def test_random_exact_count():
    mask = random_mask(37, 41, 0.013, _gen(0))
    assert mask.sum() == round(0.013 * 37 * 41) == 20
    with pytest.raises(RawMambaError, match="Generator"):
        random_mask(16, 16, 0.1, None)
    with pytest.raises(RawMambaError, match="rate"):
        random_mask(16, 16, 0.0, _gen(0))
    with pytest.raises(RawMambaError, match="no sample"):
        random_mask(4, 4, 0.01, _gen(0))


@pytest.mark.parametrize("sample", [
    lambda rng: grid_mask(32, 32, rng=rng),
    lambda rng: random_mask(32, 32, 1 / 64, rng),
    lambda rng: superpixel_mask(_photo(48, 64), rng=rng),
])
def test_determinism(sample):
    assert torch.equal(sample(_gen(1)), sample(_gen(1)))
    assert not torch.equal(sample(_gen(1)), sample(_gen(2)))


@pytest.mark.parametrize("image", [
    _photo(),
    _photo(90, 131),  # partial cells
    torch.rand(3, 64, 64, generator=_gen(0)),  # noise: SLIC merges it into few segments
    torch.full((3, 40, 40), 0.5),  # flat
])
def test_superpixel_budget_is_the_grid_budget(image):
    h, w = image.shape[-2:]
    for rng in (None, _gen(0)):
        mask = superpixel_mask(image, rng=rng)
        assert mask.shape == (1, h, w)
        assert mask.sum().item() == grid_budget(h, w)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_superpixel_centroid_pick_avoids_outlier_pixels():
    g = _gen(4)
    image = torch.full((3, 96, 96), 0.4)
    image[:, :, 48:] = 0.7  # two flat regions
    salt = torch.rand(96, 96, generator=g) < 0.1
    image[:, salt] = 1.0
    on_salt = superpixel_mask(image)[0][salt].sum().item() / grid_budget(96, 96)
    grid_on_salt = grid_mask(96, 96)[0][salt].sum().item() / grid_budget(96, 96)
    assert on_salt < 0.02 < grid_on_salt


def test_superpixel_rejects_bad_input():
    with pytest.raises(RawMambaError, match=r"\(3, H, W\)"):
        superpixel_mask(torch.rand(1, 3, 16, 16))


def test_registry():
    assert set(SAMPLERS) == {"grid", "random", "superpixel"}
    image = _photo(48, 64)
    grid = make_sampler("grid")
    assert grid.info() == {"sampler": "grid", "cell": 8}
    assert torch.equal(grid(image), grid_mask(48, 64))
    rand = make_sampler("random", rate=0.02)
    assert torch.equal(rand(image, _gen(5)), random_mask(48, 64, 0.02, _gen(5)))
    sp = make_sampler("superpixel", cell=4, compactness=30.0)
    assert torch.equal(sp(image), superpixel_mask(image, cell=4, compactness=30.0))
    with pytest.raises(RawMambaError, match="unknown sampler"):
        make_sampler("poisson")
    with pytest.raises(RawMambaError, match="does not take"):
        make_sampler("grid", rate=0.1)
