"""``rawmamba bench quality``: every chosen method on one dataset folder with the same metadata.

Each method runs the full metadata round trip per image (CAM layout) or per video (RVD-Part2 layout):
``capture -> save_metadata -> load_metadata -> derender``, so the metadata size is *measured*: the size in
bytes of the file the method actually wrote (to a temporary folder), not an estimate.

Metadata: CAM layout items carry one sample mask (``CamDataset``'s grid sampler: one pixel per 8x8 cell at
a seeded random position), given to every method; methods that take sampled metadata use it (a network
with a learned sampler, CAM-style, stores its own choice of one pixel per cell instead: same budget), the
RIR-style method fits its parameters on the full pair; methods that take only a dense first frame
(RVD-style) are refused on images, where that frame would be the answer. RVD layout: methods that take
frame metadata get the video's dense first frame (RVD's protocol); sampled-only methods get a seeded 8x8
grid of samples of the first frame, used for every frame; the RIR-style method fits the first frame. A
raw-RGB network runs on the packed Bayer of this layout through ``NetworkMethod``'s adapter.

Protocols (``rawmamba.metrics``): CAM layout -> ``cam_psnr``/``cam_ssim``, mean over images; RVD layout ->
``rvd_psnr``/``rvd_ssim`` per frame, mean per video, then over videos. PSNR is capped at ``max_db``
(a perfect image would be infinite). Times are seconds per image (or video) on this machine: ``capture``
(building and fitting the metadata) and ``derender``. The table is printed and written atomically as
``<out>/bench_quality.md`` and ``<out>/bench_quality.json``.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import torch

from rawmamba.baselines.base import DerenderMethod
from rawmamba.baselines.registry import get_method
from rawmamba.data.images import CamDataset
from rawmamba.data.io import atomic_path, write_json
from rawmamba.data.items import item_generator
from rawmamba.data.rvd import RVDDataset
from rawmamba.data.show import detect_layout
from rawmamba.errors import RawMambaError
from rawmamba.metadata import grid_mask
from rawmamba.metrics import MetricTable, cam_psnr, cam_ssim, rvd_psnr, rvd_ssim
from rawmamba.train.checkpoint import read_description

__all__ = ["format_markdown", "load_networks", "network_label", "run_quality_bench"]


def _dataset(data: Path, split: str | None, seed: int) -> tuple[str, str, object]:
    layout, split = detect_layout(data, split)
    if layout == "cam":
        return layout, split, CamDataset(data, split, sampler="grid", seed=seed)
    if layout == "rvd":
        return layout, split, RVDDataset(data, split, frames=None, reference="video", seed=seed)
    raise RawMambaError(f"bench quality needs a CAM or RVD-Part2 layout folder, {data} is a {layout} folder")


def run_quality_bench(data: str | Path, methods: list[str], *, out: str | Path | None = None, limit: int | None = None,
                      split: str | None = None, seed: int = 0, cell: int = 8, max_db: float = 100.0,
                      networks: tuple[DerenderMethod, ...] = ()) -> dict:
    """Run ``methods`` (registry names) on the dataset folder ``data``; return (and write to ``out``) the results.

    Args:
        data: a CAM-layout or RVD-Part2-layout folder.
        methods: method names (``rawmamba.baselines.METHODS``), default options.
        out: folder for ``bench_quality.md`` and ``.json`` (None: write nothing).
        limit: at most this many images (CAM) or videos (RVD).
        split: dataset split; None: the first of test, val, train present.
        seed: seed of the sample masks.
        cell: grid cell of the RVD first-frame samples for sampled-only methods.
        max_db: PSNR cap.
        networks: trained methods to run as well (e.g. ``NetworkMethod``), listed by their ``name``.

    Returns:
        ``{"data", "layout", "split", "protocol", "items", "methods": {name: {...}}}`` with per method the
        protocol means ``psnr``/``ssim``, ``metadata_bytes`` (mean per item and the per-item list),
        ``metadata_kind``, ``capture_s`` and ``derender_s`` (means per item).
    """
    instances = {name: get_method(name) for name in methods} | {network.name: network for network in networks}
    methods = list(instances)
    if not methods:
        raise RawMambaError("bench quality: no methods given")
    data = Path(data)
    layout, split, dataset = _dataset(data, split, seed)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count < 1:
        raise RawMambaError(f"bench quality: no items to run in {data} (split {split}, limit {limit})")
    for name, method in instances.items():
        if layout == "cam" and tuple(method.metadata_kinds) == ("frame",):
            raise RawMambaError(f"bench quality: {name} takes a dense first frame as metadata; on images that "
                                "frame is the ground truth: run it on a video (RVD-layout) folder")
    group = "video" if layout == "rvd" else None
    tables = {name: MetricTable(["psnr", "ssim"]) for name in methods}
    records = {name: {"metadata_bytes_per_item": [], "capture_s": [], "derender_s": [], "metadata_kind": None}
               for name in methods}
    with tempfile.TemporaryDirectory(prefix="rawmamba-bench-") as tmp:
        for index in range(count):
            item = dataset[index]
            srgb, raw = item["srgb"], item["raw"]
            height, width = srgb.shape[-2:]
            if layout == "cam":
                mask = item["meta_mask"]
            else:
                mask = grid_mask(height, width, cell, rng=item_generator(seed, index))
            for name, method in instances.items():
                record = records[name]
                item_mask = None if layout == "rvd" and "frame" in method.metadata_kinds else mask
                start = time.perf_counter()
                meta = method.capture(srgb, raw, mask=item_mask)
                record["capture_s"].append(time.perf_counter() - start)
                path = Path(tmp) / f"{name}-{index:05d}{method.metadata_suffix}"
                method.save_metadata(path, meta)
                record["metadata_bytes_per_item"].append(path.stat().st_size)
                loaded = method.load_metadata(path, expect_size=(height, width), expect_channels=raw.shape[1])
                record["metadata_kind"] = loaded.kind
                start = time.perf_counter()
                with torch.no_grad():
                    pred = method.derender(srgb, loaded)
                record["derender_s"].append(time.perf_counter() - start)
                if layout == "cam":
                    scores = {"psnr": cam_psnr(pred, raw, max_db=max_db), "ssim": cam_ssim(pred, raw)}
                else:
                    scores = {"psnr": rvd_psnr(pred, raw, max_db=max_db), "ssim": rvd_ssim(pred, raw)}
                tables[name].add(scores, name=item["name"], video=item["name"].split("/")[0])
    results = {}
    for name in methods:
        record, means = records[name], tables[name].mean(by=group)
        results[name] = {**means, "metadata_kind": record["metadata_kind"],
                         "metadata_bytes": sum(record["metadata_bytes_per_item"]) / count,
                         "metadata_bytes_per_item": record["metadata_bytes_per_item"],
                         "capture_s": sum(record["capture_s"]) / count,
                         "derender_s": sum(record["derender_s"]) / count,
                         "per_item": tables[name].rows}
    report = {"data": str(data), "layout": layout, "split": split,
              "protocol": "CAM (16-bit, mean over images)" if layout == "cam"
              else "RVD (14-bit mosaic, mean per video then over videos)",
              "items": count, "seed": seed, "max_db": max_db, "methods": results}
    if out is not None:
        out = Path(out)
        write_json(out / "bench_quality.json", report)
        with atomic_path(out / "bench_quality.md") as path:
            path.write_text(format_markdown(report) + "\n")
    return report


def format_markdown(report: dict) -> str:
    """The results as a Markdown table (one row per method, in run order)."""
    unit = "video" if report["layout"] == "rvd" else "image"
    lines = [f"Protocol: {report['protocol']}; {report['items']} {unit}s of {report['data']} "
             f"(split {report['split']}).", "",
             f"| method | metadata | PSNR (dB) | SSIM | metadata bytes / {unit} | capture s / {unit} "
             f"| derender s / {unit} |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, r in report["methods"].items():
        psnr = "inf" if math.isinf(r["psnr"]) else f"{r['psnr']:.2f}"
        lines.append(f"| {name} | {r['metadata_kind']} | {psnr} | {r['ssim']:.4f} | {r['metadata_bytes']:.0f} "
                     f"| {r['capture_s']:.3f} | {r['derender_s']:.3f} |")
    return "\n".join(lines)


def network_label(path: str | Path) -> str:
    """A checkpoint's name in the table: its description's ``description`` or ``name`` entry, else its model."""
    description = read_description(path)
    return str(description.get("description") or description.get("name") or description["model"])


def load_networks(checkpoints: list[str], bundled: list[str], *, device: str = "cpu", finetune_steps: int = 0
                  ) -> list[DerenderMethod]:
    """``NetworkMethod`` s of checkpoint paths and bundled checkpoint names, named by ``network_label``
    (repeated names numbered); a network with a learned sampler (CAM-style) is listed a second time with
    ``finetune_steps`` of online fine-tuning, as ``<name>+ft``, when ``finetune_steps > 0``."""
    from rawmamba.inference import NetworkMethod, bundled_checkpoint  # the network stack only when asked for

    paths = [Path(c) for c in checkpoints] + [bundled_checkpoint(name) for name in bundled]
    labels = [network_label(path) for path in paths]
    labels = [f"{label} #{labels[:i].count(label) + 1}" if labels.count(label) > 1 else label
              for i, label in enumerate(labels)]
    networks = []
    for path, label in zip(paths, labels, strict=True):
        network = NetworkMethod.from_checkpoint(path, device=device, name=label)
        networks.append(network)
        if finetune_steps > 0 and network.learned_sampler:
            networks.append(NetworkMethod(network.model, name=f"{label}+ft", device=device,
                                          finetune_steps=finetune_steps))
    return networks
