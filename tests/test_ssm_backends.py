"""Backend selection: argument, environment variable, default; clear errors for unknown/unavailable ones."""

from __future__ import annotations

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.ssm import (
    DEFAULT_BACKEND,
    ENV_VAR,
    available_backends,
    get_backend,
    register_backend,
    registered_backends,
    selective_scan,
)
from rawmamba.ssm import registry as registry_module


@pytest.fixture
def scratch_registry(monkeypatch):
    """Register test backends without leaking them into other tests."""
    monkeypatch.setattr(registry_module, "_BACKENDS", dict(registry_module._BACKENDS))


def small_inputs():
    g = torch.Generator().manual_seed(0)
    return dict(
        u=torch.randn(1, 2, 5, generator=g),
        delta=torch.rand(1, 2, 5, generator=g),
        A=-torch.rand(2, 3, generator=g),
        B=torch.randn(1, 3, 5, generator=g),
        C=torch.randn(1, 3, 5, generator=g),
    )


def test_builtin_backends_are_registered_and_chunked_is_default(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert {"reference", "chunked"} <= set(available_backends())
    assert DEFAULT_BACKEND == "chunked"
    assert get_backend().name == "chunked"


def test_argument_and_env_var_choose_the_backend(monkeypatch, scratch_registry):
    calls = []

    def spy(u, *args, **kwargs):
        calls.append(kwargs)
        return torch.full_like(u, 7.0)

    register_backend("spy", spy)
    monkeypatch.setenv(ENV_VAR, "spy")
    y = selective_scan(**small_inputs(), delta_softplus=True)
    assert torch.all(y == 7.0) and calls[-1]["delta_softplus"] is True
    # An explicit argument wins over the environment.
    y = selective_scan(**small_inputs(), backend="reference")
    assert not torch.all(y == 7.0) and len(calls) == 1
    monkeypatch.delenv(ENV_VAR)
    assert get_backend().name == "chunked"


def test_unknown_backend_error_lists_what_exists(monkeypatch):
    with pytest.raises(RawMambaError, match=r"unknown selective-scan backend 'nope'.*registered: .*chunked.*reference"):
        selective_scan(**small_inputs(), backend="nope")
    monkeypatch.setenv(ENV_VAR, "from-env")
    with pytest.raises(RawMambaError, match=rf"'from-env' \(from environment variable {ENV_VAR}\)"):
        selective_scan(**small_inputs())


def test_unavailable_backend_is_refused_with_a_clear_error(scratch_registry):
    register_backend("gpu-only", lambda *a, **k: None, available=lambda: False)
    assert "gpu-only" in registered_backends() and "gpu-only" not in available_backends()
    with pytest.raises(RawMambaError, match="'gpu-only'.*not available on this machine.*available: chunked"):
        selective_scan(**small_inputs(), backend="gpu-only")


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(delta=torch.rand(1, 2, 4)), "argument delta has shape"),
        (dict(A=-torch.rand(3, 3)), "argument A must be"),
        (dict(B=torch.randn(1, 4, 5)), "argument B has shape"),
        (dict(C=torch.randn(1, 3, 3, 5)), "argument C has 3 groups"),
        (dict(A=-torch.rand(2, 3, dtype=torch.complex64)), "argument A must be a real"),
        (dict(u=torch.randn(1, 2, 0), delta=torch.rand(1, 2, 0)), "length 0"),
    ],
)
def test_bad_shapes_name_the_argument(change, message):
    with pytest.raises(RawMambaError, match=message):
        selective_scan(**(small_inputs() | change))


def test_optional_inputs_are_checked_too():
    with pytest.raises(RawMambaError, match="argument D has shape"):
        selective_scan(**small_inputs(), D=torch.ones(3))
    with pytest.raises(RawMambaError, match="argument z has shape"):
        selective_scan(**small_inputs(), z=torch.ones(1, 2, 4))
