"""The GEB key budget (our extension, rawmamba.models.ume): exact below the budget, a strided subsample above."""

from __future__ import annotations

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.models.ume import GlobalEmbeddingBlock, budget_keys


def _pair(max_keys: int | None) -> tuple[GlobalEmbeddingBlock, GlobalEmbeddingBlock]:
    torch.manual_seed(0)
    exact = GlobalEmbeddingBlock(8, heads=2, max_keys=None)
    budgeted = GlobalEmbeddingBlock(8, heads=2, max_keys=max_keys)
    budgeted.load_state_dict(exact.state_dict())
    return exact, budgeted


def test_budget_keys_keeps_all_valid_cells_within_budget():
    keep = torch.tensor([[True, False, True, True, False, False]])
    index, kept = budget_keys(keep, 4)
    assert index[kept].tolist() == [0, 2, 3]
    assert kept.tolist() == [[True, True, True, False]]


def test_budget_keys_strides_evenly_over_valid_cells():
    keep = torch.zeros(2, 100, dtype=torch.bool)
    keep[0, ::2] = True  # 50 valid cells: over the budget
    keep[1, :5] = True  # 5: within it
    index, kept = budget_keys(keep, 10)
    assert kept[0].all() and kept[1].sum() == 5
    assert index[0].tolist() == list(range(0, 100, 10))  # every 5th of the even cells
    assert index[1][kept[1]].tolist() == [0, 1, 2, 3, 4]
    assert keep.gather(1, index)[kept].all()


def test_geb_identical_when_keys_within_budget():
    exact, budgeted = _pair(16)
    query, key, value = torch.randn(2, 2, 8, 4, 4), torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    valid = torch.ones(2, 1, 4, 4)  # exactly 16 keys
    assert torch.equal(budgeted(query, key, value, valid), exact(query, key, value, valid))
    valid[0, :, 1] = 0.0
    assert torch.equal(budgeted(query, key, value, valid), exact(query, key, value, valid))


def test_geb_over_budget_attends_to_the_strided_subsample_only():
    exact, budgeted = _pair(5)
    query, key, value = torch.randn(2, 1, 8, 6, 6), torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    valid = (torch.rand(2, 1, 6, 6) > 0.3).float()
    valid[1] = 0.0
    valid[1, 0, 0, :3] = 1.0  # element 1 stays within the budget
    index, kept = budget_keys(valid.flatten(1) > 0.5, 5)
    subsample = torch.zeros(2, 36).scatter_(1, index, kept.float()).view(2, 1, 6, 6)
    assert subsample.flatten(1).sum(1).tolist() == [5.0, 3.0]
    out = budgeted(query, key, value, valid)
    assert torch.allclose(out, exact(query, key, value, subsample), atol=1e-5)
    # cells outside the subsample no longer matter
    changed = value + 10.0 * (1 - subsample)
    assert torch.allclose(budgeted(query, key, changed, valid), out, atol=1e-5)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_geb_rejects_bad_budget(bad):
    with pytest.raises(RawMambaError, match="max_keys"):
        GlobalEmbeddingBlock(8, max_keys=bad)
