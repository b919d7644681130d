"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
    # A test (or a command run in-process) must not leave gradients switched off for the tests after it.
    assert torch.is_grad_enabled(), "the test left torch's grad mode disabled"
