"""rawmamba.evaluate / ``rawmamba eval``: the CAM and RVD protocols, tables, files, ablations."""

import json
import math

import pytest
import torch

from rawmamba.baselines import DerenderMethod, SampleInterpolation
from rawmamba.cli import main
from rawmamba.data import CamDataset, RVDDataset, synthesize
from rawmamba.errors import RawMambaError
from rawmamba.evaluate import evaluate, format_markdown, group_label, results_json, write_results
from rawmamba.inference import NetworkMethod
from rawmamba.metrics import rvd_psnr
from rawmamba.models import create_model
from rawmamba.train.checkpoint import save_checkpoint

TINY = {"mamba_depth": 1, "embed_dim": 16, "meta_hidden": 16, "mamba_dim": 16, "decoder_dims": (16, 8, 8)}
FRAMES = 4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    synthesize(root / "cam", "image", 3, height=48, width=64, split="test", progress=False)
    synthesize(root / "rvd", "video", 2, height=32, width=48, frames=FRAMES, split="test", progress=False)
    for channels in (3, 4):
        torch.manual_seed(channels)
        model = create_model("rawmamba_tiny", raw_channels=channels, **TINY)
        save_checkpoint(root / "checkpoints" / f"tiny{channels}", model, model_name="rawmamba_tiny",
                        model_args={**TINY, "raw_channels": channels})
    return root


def _cam_pairs(root):
    dataset = CamDataset(root / "cam", "test")
    return [dataset.load_pair(i)[1:] for i in range(len(dataset))]


def _rvd_frames(root):
    dataset = RVDDataset(root / "rvd", "test", frames=None)
    return [[dataset.load_frame(video, f) for f in frames] for video, frames in dataset.videos]


class Oracle(DerenderMethod):
    """Returns the true RAW of each frame it recognises by its sRGB; frames listed in ``wrong`` get an offset
    (per video index ``offsets``). Records every call for protocol checks."""

    name = "oracle"

    def __init__(self, pairs, wrong=(), offset=0.0):
        self.pairs, self.wrong, self.offset, self.calls = pairs, set(wrong), offset, []

    def lookup(self, frame):
        return next(i for i, (srgb, _) in enumerate(self.pairs) if torch.equal(srgb, frame))

    def derender(self, srgb, metadata):
        self.check(srgb, metadata)
        self.calls.append((srgb.shape[0], metadata))
        out = []
        for frame in srgb:
            index = self.lookup(frame)
            raw = self.pairs[index][1]
            out.append((raw + self.offset).clamp(0, 1) if index in self.wrong else raw)
        return torch.stack(out)


def test_cam_protocol_oracle_is_perfect_and_metadata_is_grid(world):
    pairs = _cam_pairs(world)
    oracle = Oracle(pairs)
    table = evaluate(oracle, world / "cam", progress=False)
    assert len(table) == 3 and group_label(table) == "camera"
    assert all(math.isinf(row["psnr"]) and row["ssim"] == pytest.approx(1.0) for row in table.rows)
    for (frames, meta), (_, raw) in zip(oracle.calls, pairs, strict=True):
        assert frames == 1 and meta.kind == "sampled"
        assert meta.num_samples == (48 // 8) * (64 // 8)  # one sample per 8x8 cell
        assert torch.equal(meta.raw, raw * meta.mask)


def test_cam_metadata_fixed_per_image_whatever_the_selection(world):
    method = SampleInterpolation()
    full = evaluate(method, world / "cam", progress=False)
    again = evaluate(method, world / "cam", progress=False)
    first = evaluate(method, world / "cam", limit=1, progress=False)
    other_seed = evaluate(method, world / "cam", seed=1, progress=False)
    assert full.rows == again.rows
    assert first.rows[0] == full.rows[0]
    assert other_seed.rows[0]["psnr"] != full.rows[0]["psnr"]


def test_cam_network_gives_finite_scores(world):
    method = NetworkMethod.from_checkpoint(world / "checkpoints" / "tiny3")
    table = evaluate(method, world / "cam", limit=2, progress=False)
    assert len(table) == 2
    assert all(math.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 for r in table.rows)


def test_rvd_protocol_ignores_frame_one_and_uses_first_frame_metadata(world):
    videos = _rvd_frames(world)
    pairs = [pair for video in videos for pair in video]
    first_frames = {i * FRAMES for i in range(len(videos))}
    oracle = Oracle(pairs, wrong=first_frames, offset=0.2)
    table = evaluate(oracle, world / "rvd", window=3, progress=False)
    assert group_label(table) == "video"
    assert len(table) == len(videos) * (FRAMES - 1)  # frames 2..N
    assert all(math.isinf(r["psnr"]) and r["ssim"] == pytest.approx(1.0) for r in table.rows)
    assert max(frames for frames, _ in oracle.calls) == 3  # windows of at most 3 frames
    for video in videos:  # every window of a video carries that video's first frame, dense
        metas = [m for _, m in oracle.calls if torch.equal(m.srgb, video[0][0])]
        assert len(metas) == 2 and all(m.mask is None and torch.equal(m.raw, video[0][1]) for m in metas)

    wrong_second = Oracle(pairs, wrong={i * FRAMES + 1 for i in range(len(videos))}, offset=0.2)
    table = evaluate(wrong_second, world / "rvd", window=3, progress=False)
    assert sum(math.isfinite(r["psnr"]) for r in table.rows) == len(videos)


def test_rvd_average_is_mean_of_video_means(world):
    videos = _rvd_frames(world)
    pairs = [pair for video in videos for pair in video]
    # every frame wrong; frame 2 of the second video only, so per-frame and per-video means differ
    wrong = set(range(FRAMES)) | {FRAMES + 1}
    table = evaluate(Oracle(pairs, wrong=wrong, offset=0.05), world / "rvd", window=2, progress=False)
    per_video = []
    for v, video in enumerate(videos):
        scores = [rvd_psnr((raw + 0.05).clamp(0, 1), raw).item() if v * FRAMES + t in wrong else math.inf
                  for t, (_, raw) in enumerate(video) if t > 0]
        per_video.append(sum(scores) / len(scores))
    assert table.group_means("video")["video_0000"]["psnr"] == pytest.approx(per_video[0])
    assert math.isfinite(per_video[0]) and math.isinf(per_video[1])
    assert table.mean(by="video")["psnr"] == math.inf


def test_rvd_network_finite_and_cameras_rejected(world):
    method = NetworkMethod.from_checkpoint(world / "checkpoints" / "tiny4")
    table = evaluate(method, world / "rvd", window=2, limit=1, progress=False)
    assert len(table) == FRAMES - 1 and all(math.isfinite(r["psnr"]) for r in table.rows)
    with pytest.raises(RawMambaError, match="--cameras"):
        evaluate(method, world / "rvd", cameras=["sony"], progress=False)


def test_tables_written_as_markdown_and_json(world, tmp_path):
    pairs = _cam_pairs(world)
    tables = {"oracle": evaluate(Oracle(pairs), world / "cam", progress=False),
              "interp": evaluate(SampleInterpolation(), world / "cam", progress=False)}
    markdown, data = write_results(tmp_path / "out", tables, title="T", split="test")
    text = markdown.read_text()
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines[0].split("|")[1:-1] == [" camera ", " oracle PSNR ", " oracle SSIM ", " interp PSNR ",
                                         " interp SSIM "]
    camera = tables["interp"].rows[0]["camera"]
    assert len(lines) == 2 + 1 + 1 and lines[2].startswith(f"| {camera} |") and "**Average**" in lines[3]
    assert "| inf | 1.0000 |" in lines[3]
    parsed = json.loads(data.read_text())
    assert parsed["split"] == "test" and parsed["group_by"] == "camera"
    assert parsed["methods"]["oracle"]["average"]["psnr"] == "inf"
    interp = tables["interp"].mean()
    assert parsed["methods"]["interp"]["average"]["psnr"] == pytest.approx(interp["psnr"])
    assert len(parsed["methods"]["interp"]["rows"]) == 3
    with pytest.raises(RawMambaError, match="already exists"):
        write_results(tmp_path / "out", tables)
    write_results(tmp_path / "out", {"interp": tables["interp"]}, force=True)
    assert "oracle" not in json.loads(data.read_text())["methods"]


def test_mixed_tasks_refused(world):
    cam = evaluate(SampleInterpolation(), world / "cam", limit=1, progress=False)
    rvd = evaluate(Oracle([p for v in _rvd_frames(world) for p in v]), world / "rvd", limit=1, progress=False)
    with pytest.raises(RawMambaError, match="one table"):
        format_markdown({"a": cam, "b": rvd})
    assert results_json({"b": rvd})["groups"] == ["video_0000"]


def test_eval_command_single_and_ablation(world, tmp_path, capsys):
    checkpoints = world / "checkpoints"
    out = tmp_path / "single"
    code = main(["eval", "--checkpoint", str(checkpoints / "tiny3.safetensors"), "--data", str(world / "cam"),
                 "--out", str(out), "--limit", "1", "--baseline", "global-fit"])
    assert code == 0
    parsed = json.loads((out / "results.json").read_text())
    assert list(parsed["methods"]) == ["tiny3", "global-fit"] and parsed["limit"] == 1
    assert "tiny3 PSNR" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", str(checkpoints / "tiny3"), "--data", str(world / "cam"),
                 "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err

    rvd_only = tmp_path / "ck4"
    rvd_only.mkdir()
    for suffix in (".safetensors", ".json"):
        (rvd_only / f"a{suffix}").write_bytes((checkpoints / f"tiny4{suffix}").read_bytes())
        (rvd_only / f"b{suffix}").write_bytes((checkpoints / f"tiny4{suffix}").read_bytes())
    out = tmp_path / "ablation"
    assert main(["eval", "--ablation", str(rvd_only), "--data", str(world / "rvd"), "--out", str(out),
                 "--limit", "1", "--window", "2"]) == 0
    parsed = json.loads((out / "results.json").read_text())
    assert list(parsed["methods"]) == ["a", "b"] and parsed["group_by"] == "video"
    a, b = (parsed["methods"][k]["average"]["psnr"] for k in "ab")
    assert a == pytest.approx(b) and math.isfinite(a)  # the same weights give the same score
