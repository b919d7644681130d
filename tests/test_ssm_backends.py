"""Backend selection: argument, environment variable, default; clear errors for unknown/unavailable ones."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.ssm import (
    AUTO,
    AUTO_PREFERENCE,
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


def _fused_cpu_importable() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def test_builtin_backends_are_registered_and_auto_is_default(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert {"reference", "chunked"} <= set(available_backends())
    assert {"reference", "chunked", "fused_cpu", "triton", "mamba_ssm"} <= set(registered_backends())
    assert DEFAULT_BACKEND == AUTO and AUTO not in registered_backends()
    assert get_backend().name == ("fused_cpu" if _fused_cpu_importable() else "chunked")
    assert ("fused_cpu" in available_backends()) == _fused_cpu_importable()


def test_auto_takes_the_first_available_backend_for_the_device(monkeypatch, scratch_registry):
    monkeypatch.delenv(ENV_VAR, raising=False)
    calls = []
    register_backend("fast-cpu", lambda u, *a, **k: calls.append("fast-cpu") or u.clone())
    register_backend("fast-gpu", lambda *a, **k: None, available=lambda: False)
    monkeypatch.setitem(AUTO_PREFERENCE, "cpu", ("missing", "fast-cpu", "chunked"))
    monkeypatch.setitem(AUTO_PREFERENCE, "cuda", ("fast-gpu", "chunked"))
    assert get_backend(AUTO).name == "fast-cpu"
    assert get_backend(device_type="cuda").name == "chunked"  # fast-gpu is not available
    assert get_backend(device_type="xpu").name == "chunked"  # device types without a preference
    selective_scan(**small_inputs())
    assert calls == ["fast-cpu"]
    # "auto" from the environment variable too; explicit names bypass the preference.
    monkeypatch.setenv(ENV_VAR, AUTO)
    assert get_backend().name == "fast-cpu"
    assert get_backend("reference").name == "reference"
    monkeypatch.setitem(AUTO_PREFERENCE, "cpu", ("fast-gpu",))
    with pytest.raises(RawMambaError, match=r"'auto' \(from environment variable .*\) found none of fast-gpu"):
        get_backend()


def test_import_and_auto_work_without_numba_and_triton():
    """A fresh interpreter where importing numba or triton fails: rawmamba imports, auto falls back to chunked."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["numba"] = sys.modules["triton"] = None  # import raises ImportError, find_spec gives None
        import torch
        import rawmamba
        from rawmamba.ssm import available_backends, get_backend, selective_scan
        assert get_backend().name == "chunked", get_backend().name
        assert "fused_cpu" not in available_backends() and "triton" not in available_backends()
        y = selective_scan(torch.randn(1, 2, 5), torch.rand(1, 2, 5), -torch.rand(2, 3), torch.randn(1, 3, 5),
                           torch.randn(1, 3, 5))
        assert y.shape == (1, 2, 5)
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_auto_cannot_be_registered(scratch_registry):
    with pytest.raises(RawMambaError, match="other than 'auto'"):
        register_backend(AUTO, lambda *a, **k: None)


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
    assert get_backend().name == ("fused_cpu" if _fused_cpu_importable() else "chunked")


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
