"""``rawmamba bench quality``: the table is written, and its metadata sizes are the files' sizes on disk."""

import json

import pytest
import torch

from rawmamba.baselines import METHODS, DerenderMethod, get_method
from rawmamba.baselines.bench import run_quality_bench
from rawmamba.cli import main
from rawmamba.data import CamDataset, synthesize
from rawmamba.errors import RawMambaError
from rawmamba.metrics import cam_psnr


@pytest.fixture(scope="module")
def cam_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cam")
    synthesize(root, "image", 2, height=32, width=48, seed=3, progress=False)
    return root


def test_cli_writes_the_table_with_measured_metadata_sizes(cam_folder, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "quality", "--data", str(cam_folder), "--methods", ",".join(METHODS),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "bench_quality.json").read_text())
    markdown = (out / "bench_quality.md").read_text()
    assert report["layout"] == "cam" and report["items"] == 2 and list(report["methods"]) == list(METHODS)
    # Re-create every method's metadata file independently and compare the sizes in bytes.
    dataset = CamDataset(cam_folder, "train", seed=0)
    for name, result in report["methods"].items():
        method = get_method(name)
        sizes = []
        for index in range(2):
            item = dataset[index]
            meta = method.capture(item["srgb"], item["raw"], mask=item["meta_mask"])
            path = method.save_metadata(tmp_path / f"{name}-{index}{method.metadata_suffix}", meta)
            sizes.append(path.stat().st_size)
        assert result["metadata_bytes_per_item"] == sizes
        assert result["metadata_bytes"] == pytest.approx(sum(sizes) / 2)
        assert f"| {name} | {result['metadata_kind']} | " in markdown and f"| {sum(sizes) / 2:.0f} |" in markdown
        assert name in printed
        assert result["capture_s"] >= 0 and result["derender_s"] > 0
    kinds = {name: r["metadata_kind"] for name, r in report["methods"].items()}
    assert kinds["rir"] == "parameters" and kinds["sam"] == "sampled" and kinds["global-fit"] == "sampled"
    # The PSNR column is the CAM protocol's mean over the images of that method's prediction.
    item = dataset[0]
    method = get_method("global-fit")
    meta = method.capture(item["srgb"], item["raw"], mask=item["meta_mask"])
    first = cam_psnr(method.derender(item["srgb"], meta), item["raw"]).item()
    assert report["methods"]["global-fit"]["per_item"][0]["psnr"] == pytest.approx(min(first, 100.0))


def test_rvd_layout_uses_the_rvd_protocol_and_first_frame_metadata(tmp_path):
    synthesize(tmp_path / "rvd", "video", 1, height=64, width=96, frames=2, seed=1, split="test", progress=False)
    report = run_quality_bench(tmp_path / "rvd", ["global-fit", "rir", "sam"], limit=1)
    assert report["layout"] == "rvd" and report["protocol"].startswith("RVD")
    kinds = {name: r["metadata_kind"] for name, r in report["methods"].items()}
    assert kinds == {"global-fit": "frame", "rir": "parameters", "sam": "sampled"}
    assert all(torch.isfinite(torch.tensor(r["psnr"])) for r in report["methods"].values())


def test_bad_method_and_folder_are_clear_errors(cam_folder, tmp_path):
    with pytest.raises(RawMambaError, match="unknown de-rendering method 'nope'"):
        run_quality_bench(cam_folder, ["nope"])
    with pytest.raises(RawMambaError, match="does not exist"):
        run_quality_bench(tmp_path / "missing", ["sam"])


def test_trained_networks_join_the_table(cam_folder):
    class Oracle(DerenderMethod):
        """Looks the ground truth up by its sRGB (stands in for a trained network)."""

        name = "oracle"

        def __init__(self, pairs):
            self.pairs = pairs

        def derender(self, srgb, metadata):
            return next(raw for s, raw in self.pairs if torch.equal(s, srgb))

    dataset = CamDataset(cam_folder, "train", sampler="grid", seed=0)
    oracle = Oracle([(dataset[i]["srgb"], dataset[i]["raw"]) for i in range(len(dataset))])
    report = run_quality_bench(cam_folder, ["global-fit"], networks=(oracle,))
    assert list(report["methods"]) == ["global-fit", "oracle"]
    assert report["methods"]["oracle"]["psnr"] == 100.0  # exact, capped at max_db
    assert report["methods"]["global-fit"]["psnr"] < 100.0
