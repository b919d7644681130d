"""Checkpoints: weights + description round trip, atomic writes, clear errors."""

import json

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.train.checkpoint import load_matching_weights, load_weights, read_description, save_checkpoint


def _net(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 1))


def test_round_trip_restores_weights_and_description(tmp_path):
    source, target = _net(1), _net(2)
    save_checkpoint(tmp_path / "ck", source, model_name="toy", model_args={"dim": 4}, info={"step": 12})
    load_weights(target, tmp_path / "ck")
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    description = read_description(tmp_path / "ck.safetensors")
    assert description["model"] == "toy" and description["model_args"] == {"dim": 4} and description["step"] == 12
    assert description["code_version"]
    assert not list(tmp_path.glob("*.tmp")), "temporary files left behind"


def test_train_state_is_saved_only_when_given(tmp_path):
    save_checkpoint(tmp_path / "a", _net(0), model_name="toy", model_args={})
    save_checkpoint(tmp_path / "b", _net(0), model_name="toy", model_args={}, train_state={"step": 3})
    assert not (tmp_path / "a.state.pt").exists()
    assert torch.load(tmp_path / "b.state.pt")["step"] == 3


def test_errors_name_the_file(tmp_path):
    with pytest.raises(RawMambaError, match="missing.safetensors"):
        load_weights(_net(0), tmp_path / "missing")
    save_checkpoint(tmp_path / "ck", _net(0), model_name="toy", model_args={})
    with pytest.raises(RawMambaError, match="do not fit"):
        load_weights(torch.nn.Linear(2, 2), tmp_path / "ck")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RawMambaError, match="bad.safetensors"):
        load_weights(_net(0), tmp_path / "bad")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(RawMambaError, match="not a rawmamba checkpoint"):
        read_description(tmp_path / "other")


def test_matching_weights_warm_start_a_related_model(tmp_path):
    source = _net(1)
    save_checkpoint(tmp_path / "ck", source, model_name="toy", model_args={})
    torch.manual_seed(2)
    wider_head = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 5, 1))
    head_before = wider_head[2].weight.clone()
    loaded, kept = load_matching_weights(wider_head, tmp_path / "ck")
    assert loaded == ["0.weight", "0.bias"] and kept == ["2.bias", "2.weight"]
    assert torch.equal(wider_head[0].weight, source[0].weight)
    assert torch.equal(wider_head[2].weight, head_before)
    loaded, kept = load_matching_weights(wider_head, tmp_path / "ck", skip=("0.b",))
    assert loaded == ["0.weight"] and "0.bias" in kept
    with pytest.raises(RawMambaError, match="no tensor"):
        load_matching_weights(torch.nn.Linear(7, 7), tmp_path / "ck")


def test_matching_weights_widen_an_input_layer_without_changing_its_output(tmp_path):
    source = torch.nn.Conv2d(3, 4, 1)
    save_checkpoint(tmp_path / "ck", source, model_name="toy", model_args={})
    wider = torch.nn.Conv2d(5, 4, 1)  # two new input channels
    loaded, kept = load_matching_weights(wider, tmp_path / "ck")
    assert loaded == ["weight", "bias"] and kept == []
    x = torch.rand(1, 5, 6, 6)
    assert torch.allclose(wider(x), source(x[:, :3]), atol=1e-6)
    with pytest.raises(RawMambaError, match="no tensor"):  # fewer inputs is no widening
        load_matching_weights(torch.nn.Conv2d(2, 4, 1, bias=False), tmp_path / "ck")
