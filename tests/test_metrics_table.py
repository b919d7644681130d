"""MetricTable: per-group means and the RVD per-video-then-mean protocol."""

import math

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.metrics import MetricTable, rvd_psnr


def test_rvd_protocol_is_mean_of_video_means():
    g = torch.Generator().manual_seed(0)
    table = MetricTable()
    per_video = {}
    for name, frames, noise in [("long", 5, 0.01), ("short", 2, 0.1)]:
        gt = torch.rand(frames, 4, 8, 8, generator=g, dtype=torch.float64)
        pred = (gt + noise * torch.randn(gt.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
        values = rvd_psnr(pred, gt)
        per_video[name] = values.mean().item()
        table.add({"psnr": values}, video=name)
    assert len(table) == 7
    assert math.isclose(table.group_means("video")["long"]["psnr"], per_video["long"], rel_tol=1e-12)
    video_mean = table.mean(by="video")["psnr"]
    assert math.isclose(video_mean, (per_video["long"] + per_video["short"]) / 2, rel_tol=1e-12)
    frame_mean = table.mean()["psnr"]
    assert math.isclose(frame_mean, (5 * per_video["long"] + 2 * per_video["short"]) / 7, rel_tol=1e-12)
    assert not math.isclose(video_mean, frame_mean, rel_tol=1e-3)


def test_groups_format_and_rows():
    table = MetricTable(["psnr", "ssim"])
    table.add({"psnr": 40.0, "ssim": 0.9}, camera="sony", name="a")
    table.add({"psnr": 50.0, "ssim": 1.0}, camera="sony", name="b")
    table.add({"psnr": 30.0, "ssim": torch.tensor(0.5)}, camera="samsung", name="c")
    means = table.group_means("camera")
    assert list(means) == ["sony", "samsung"]
    assert means["sony"] == pytest.approx({"psnr": 45.0, "ssim": 0.95})
    assert means["samsung"] == pytest.approx({"psnr": 30.0, "ssim": 0.5})
    assert table.mean() == pytest.approx({"psnr": 40.0, "ssim": 0.8})
    assert table.mean(by="camera") == pytest.approx({"psnr": 37.5, "ssim": 0.725})
    assert table.rows[2] == {"camera": "samsung", "name": "c", "psnr": 30.0, "ssim": 0.5}
    lines = table.format(by="camera", digits=3).splitlines()
    assert [line.split() for line in lines] == [["camera", "psnr", "ssim"], ["sony", "45.000", "0.950"],
                                                ["samsung", "30.000", "0.500"], ["mean", "37.500", "0.725"]]


def test_inf_propagates_to_mean():
    table = MetricTable()
    table.add({"psnr": float("inf")}, video="a")
    table.add({"psnr": 40.0}, video="b")
    assert math.isinf(table.mean(by="video")["psnr"])


def test_bad_use_raises():
    table = MetricTable()
    with pytest.raises(RawMambaError, match="empty"):
        table.mean()
    table.add({"psnr": 1.0}, video="a")
    with pytest.raises(RawMambaError, match="columns"):
        table.add({"ssim": 1.0}, video="a")
    with pytest.raises(RawMambaError, match="different lengths"):
        MetricTable().add({"a": torch.zeros(2), "b": 1.0})
    table.add({"psnr": 2.0})
    with pytest.raises(RawMambaError, match="no label 'video'"):
        table.mean(by="video")
