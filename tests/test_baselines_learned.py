"""The learned baselines behind ``derender(srgb, metadata)``: learned capture, online fine-tuning, the packed
adapter, ``rawmamba bench quality`` and ``rawmamba eval`` with trained networks."""

import json

import pytest
import torch

from rawmamba.baselines.bench import load_networks, run_quality_bench
from rawmamba.baselines.online_finetune import finetune_on_samples, sampled_l1
from rawmamba.cli import main
from rawmamba.data import CamDataset, synth_image, synthesize
from rawmamba.errors import RawMambaError
from rawmamba.inference import NetworkMethod, packed_as_raw_rgb, raw_rgb_as_packed
from rawmamba.metadata import grid_mask, sample_image_metadata
from rawmamba.models import create_model
from rawmamba.train.checkpoint import save_checkpoint

SMALL = {
    "cam_unet": {"widths": (8, 16, 16), "sampler_width": 8},
    "rvd_net": {"widths": (8, 16, 16), "heads": 2, "confidence_width": 8},
    "blind_unet": {"widths": (8, 16, 16)},
}


def small(name, **changes):
    torch.manual_seed(0)
    return create_model(name, **SMALL[name], **changes)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("learned")
    synthesize(root / "cam", "image", 2, height=32, width=40, seed=3, progress=False)
    synthesize(root / "rvd", "video", 1, height=48, width=64, frames=3, seed=1, split="test", progress=False)
    for name in SMALL:
        save_checkpoint(root / "checkpoints" / name, small(name), model_name=name, model_args=SMALL[name])
    return root


def test_cam_capture_stores_the_sampler_choice_one_per_cell_and_round_trips(tmp_path):
    method = NetworkMethod(small("cam_unet"), name="cam")
    assert method.metadata_kinds == ("sampled",) and method.learned_sampler
    srgb, raw = torch.rand(3, 27, 40), torch.rand(3, 27, 40)
    given = grid_mask(27, 40)  # asks for sampled metadata; the network puts its samples where it wants
    meta = method.capture(srgb, raw, mask=given)
    chosen = method.model.sampler.hard_mask(srgb[None])[0]
    assert torch.equal(meta.mask, chosen) and not torch.equal(meta.mask, given)
    assert meta.mask.sum() == given.sum()  # the same budget: one pixel per 8x8 cell
    assert torch.equal(meta.raw, raw * chosen)
    path = method.save_metadata(tmp_path / "cam.npz", meta)
    loaded = method.load_metadata(path, expect_size=(27, 40), expect_channels=3)
    assert torch.equal(loaded.mask, meta.mask)
    assert torch.allclose(loaded.raw, meta.raw, atol=1 / 65535)
    assert method.derender(srgb[None], loaded).shape == (1, 3, 27, 40)
    with pytest.raises(RawMambaError, match="needs a sample mask"):
        method.capture(srgb, raw)


def test_online_finetuning_lowers_the_loss_on_the_samples_and_leaves_the_network_alone():
    model = small("cam_unet").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pair = synth_image(0, 0, height=32, width=32)
    x, raw = pair.srgb[None, None], pair.raw[None]
    mask = grid_mask(32, 32, rng=torch.Generator().manual_seed(1))[None]
    meta = (x[:, 0] * mask, raw * mask, mask)
    tuned, losses = finetune_on_samples(model, x, *meta, steps=10, lr=1e-4)
    assert len(losses) == 10
    with torch.no_grad():
        start = sampled_l1(model(x, *meta[:2], meta_mask=mask)[:, 0], raw * mask, mask)
        end = sampled_l1(tuned(x, *meta[:2], meta_mask=mask)[:, 0], raw * mask, mask)
    assert losses[0] == pytest.approx(start.item(), rel=1e-5)
    assert all(later < earlier for earlier, later in zip(losses, losses[1:], strict=False)) and end < losses[-1]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(tuned.sampler.score[0].weight, model.sampler.score[0].weight)  # the sampler is not tuned
    with pytest.raises(RawMambaError, match="steps"):
        finetune_on_samples(model, x, *meta, steps=-1)


def test_finetuning_method_changes_the_prediction_under_no_grad():
    model = small("cam_unet")
    srgb, raw = torch.rand(3, 32, 32), torch.rand(3, 32, 32)
    meta = sample_image_metadata(srgb, raw, grid_mask(32, 32))
    plain = NetworkMethod(model, name="cam").derender(srgb[None], meta)
    with torch.no_grad():
        tuned = NetworkMethod(model, name="cam+ft", finetune_steps=3).derender(srgb[None], meta)
    assert not torch.allclose(plain, tuned)


def test_packed_adapter_round_trips_equal_greens_and_runs_a_raw_rgb_network_on_bayer():
    rgb = torch.rand(2, 3, 5, 6)
    packed = raw_rgb_as_packed(rgb)
    assert torch.equal(packed[:, 1], packed[:, 2]) and torch.equal(packed_as_raw_rgb(packed), rgb)
    bayer = torch.rand(4, 8, 8)
    assert torch.allclose(packed_as_raw_rgb(bayer)[1], (bayer[1] + bayer[2]) / 2)
    from rawmamba.metadata import Metadata

    method = NetworkMethod(small("blind_unet"), name="blind")
    out = method.derender(torch.rand(2, 3, 8, 8), Metadata(torch.rand(3, 8, 8), bayer))
    assert out.shape == (2, 4, 8, 8) and torch.equal(out[:, 1], out[:, 2])
    with pytest.raises(RawMambaError, match="predicts 4-channel RAW, the metadata has 3"):
        NetworkMethod(small("blind_unet", raw_channels=4)).derender(torch.rand(1, 3, 8, 8),
                                                                    Metadata(torch.rand(3, 8, 8), torch.rand(3, 8, 8)))


def test_bench_quality_runs_the_learned_baselines_on_images_and_videos(folders):
    checkpoints = [str(folders / "checkpoints" / name) for name in ("cam_unet", "blind_unet")]
    networks = load_networks(checkpoints, [], finetune_steps=2)
    assert [n.name for n in networks] == ["cam_unet", "cam_unet+ft", "blind_unet"]
    report = run_quality_bench(folders / "cam", ["interpolation"], networks=tuple(networks))
    results = report["methods"]
    assert list(results) == ["interpolation", "cam_unet", "cam_unet+ft", "blind_unet"]
    assert results["cam_unet"]["metadata_kind"] == "sampled"
    # the learned sampler stores as many samples as the grid: the files are about the same size
    assert abs(results["cam_unet"]["metadata_bytes"] - results["interpolation"]["metadata_bytes"]) < 200
    assert results["cam_unet"]["psnr"] != results["cam_unet+ft"]["psnr"]

    rvd = load_networks([str(folders / "checkpoints" / "rvd_net")], [])
    with pytest.raises(RawMambaError, match="rvd_net takes a dense first frame"):
        run_quality_bench(folders / "cam", [], networks=tuple(rvd))
    report = run_quality_bench(folders / "rvd", ["global-fit"], networks=(*rvd, networks[0], networks[2]))
    kinds = {name: r["metadata_kind"] for name, r in report["methods"].items()}
    assert kinds == {"global-fit": "frame", "rvd_net": "frame", "cam_unet": "sampled", "blind_unet": "frame"}
    assert all(torch.isfinite(torch.tensor(r["psnr"])) for r in report["methods"].values())


def test_bench_and_eval_command_lines_take_several_networks(folders, tmp_path):
    ck = folders / "checkpoints"
    out = tmp_path / "bench"
    assert main(["bench", "quality", "--data", str(folders / "cam"), "--methods", "global-fit", "--checkpoint",
                 str(ck / "cam_unet"), "--checkpoint", str(ck / "blind_unet"), "--finetune-steps", "1",
                 "--out", str(out)]) == 0
    report = json.loads((out / "bench_quality.json").read_text())
    assert list(report["methods"]) == ["global-fit", "cam_unet", "cam_unet+ft", "blind_unet"]

    out = tmp_path / "eval"
    assert main(["eval", "--checkpoint", str(ck / "cam_unet"), "--data", str(folders / "cam"), "--split", "train",
                 "--finetune-steps", "1", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["cam_unet", "cam_unet+ft"]
    # eval stores the learned sampler's choice, not the grid: the prediction is the network's on its own samples
    dataset = CamDataset(folders / "cam", "train")
    name, srgb, raw = dataset.load_pair(0)
    method = NetworkMethod.from_checkpoint(ck / "cam_unet")
    from rawmamba.evaluate import _score

    expected = _score(method.derender(srgb[None], method.capture(srgb, raw, grid_mask(32, 40))), raw[None])
    row = next(r for r in results["methods"]["cam_unet"]["rows"] if r["name"] == name)
    assert row["psnr"] == pytest.approx(expected["psnr"].item(), rel=1e-6)

    out = tmp_path / "eval-video"
    assert main(["eval", "--checkpoint", str(ck / "rvd_net"), "--data", str(folders / "rvd"), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["group_by"] == "video" and list(results["methods"]) == ["rvd_net"]


@pytest.mark.parametrize("name", ["cam_unet", "rvd_net", "blind_unet"])
def test_bundled_baselines_load_and_are_small(name):
    from rawmamba.inference import bundled_checkpoint

    method = NetworkMethod.from_checkpoint(bundled_checkpoint(name), name=name)
    assert method.model.variant == name and method.model.raw_channels == 3
    assert sum(p.numel() for p in method.model.parameters()) < 1_000_000
    assert bundled_checkpoint(name).with_suffix(".safetensors").stat().st_size < 4_000_000


def test_bundled_baselines_beat_their_floors_on_an_unseen_synthetic_image():
    """Trained, not just loadable: on a pair from a seed no training run used, the blind U-Net beats the inverse
    sRGB OETF and the CAM-style network beats interpolating its own samples."""
    from rawmamba.baselines import InverseGamma, SampleInterpolation
    from rawmamba.inference import bundled_checkpoint
    from rawmamba.metrics import cam_psnr

    pair = synth_image(20241127, 0, height=96, width=128)
    mask = grid_mask(96, 128, rng=torch.Generator().manual_seed(0))
    blind = NetworkMethod.from_checkpoint(bundled_checkpoint("blind_unet"))
    cam = NetworkMethod.from_checkpoint(bundled_checkpoint("cam_unet"))
    grid_meta = sample_image_metadata(pair.srgb, pair.raw, mask)
    cam_meta = cam.capture(pair.srgb, pair.raw, mask)

    def score(method, meta):
        return cam_psnr(method.derender(pair.srgb[None], meta)[0], pair.raw).item()

    assert score(blind, grid_meta) > score(InverseGamma(), grid_meta)
    assert score(cam, cam_meta) > score(SampleInterpolation(), cam_meta)


def test_dense_training_metadata_gives_the_whole_frame_and_is_synthetic_only():
    from rawmamba.train.config import load_config
    from rawmamba.train.datasets import SyntheticPool, build_train_datasets

    pool = SyntheticPool("image", count=1, size=32, patch=16, sampler="dense")
    item = pool[0]
    assert "meta_mask" not in item
    assert torch.equal(item["meta_raw"], item["raw"][0]) and torch.equal(item["meta_srgb"], item["srgb"][0])
    config = load_config(None, {"data": "cam", "data_root": "/nowhere", "sampler": "dense"})
    with pytest.raises(RawMambaError, match="sampler=dense is offered by synthetic data only"):
        build_train_datasets(config)
