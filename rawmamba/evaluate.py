"""Evaluate a de-rendering method on a dataset folder under the published test protocols.

``evaluate(method, root)`` detects the layout (``rawmamba.data.detect_layout``) and follows its protocol:

- CAM layout (image task, the paper's Table 1): every test image whole, batch 1; metadata sampled by
  ``sampler`` (default: the 8x8 grid, 1.5%) with a generator seeded from ``seed`` and the image's name
  (``<camera folder>/<stem>``), so an image gets the same metadata whichever cameras or ``limit`` are
  chosen, and stored by the method's ``capture`` (a network with a learned sampler, CAM-style, keeps its
  own choice of one pixel per cell instead); 16-bit PSNR/SSIM (``cam_psnr``/``cam_ssim``); rows labelled
  ``camera``; the average is the mean over images.
- RVD-Part2 layout (video task, Table 2): only the first frame's (sRGB, RAW) pair of each video is given;
  the video is streamed window by window (``window`` frames per call, the first window starting with
  the metadata frame itself, as in training clips), each window with the same first-frame metadata;
  frames 2..N are scored on the unpacked 14-bit mosaic (``rvd_psnr``/``rvd_ssim``, SSIM with data range
  1, not RVD's 2); rows labelled ``video``; the average is the mean of the per-video means. Flow files
  are not read: a network computes its own flow to the metadata frame.
- Pair-folder layout (``srgb/``, ``raw/``): as CAM (grid metadata per image) with raw-RGB scored by the
  CAM protocol and packed Bayer by the RVD one; rows labelled ``camera`` with the folder's name.

Tables for several methods (an ablation) are rendered side by side by ``format_markdown`` and
``results_json``, and written by ``write_results``.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from rawmamba.baselines.base import DerenderMethod
from rawmamba.data import CamDataset, PairFolderDataset, RVDDataset, detect_layout
from rawmamba.data.io import atomic_path, write_json
from rawmamba.errors import RawMambaError
from rawmamba.infer import as_method, derender_stream, derender_tiled
from rawmamba.metadata import Metadata, Sampler, make_sampler
from rawmamba.metrics import MetricTable, cam_psnr, cam_ssim, rvd_psnr, rvd_ssim

__all__ = ["GROUP_LABELS", "evaluate", "format_markdown", "group_label", "image_generator", "results_json",
           "write_results"]

GROUP_LABELS = ("camera", "video")  # the label a table's rows are grouped by (image task, video task)
METRICS = ("psnr", "ssim")
_SEED_STRIDE = 1_000_003


def image_generator(seed: int, name: str) -> torch.Generator:
    """The metadata generator of one test image: a pure function of ``seed`` and the image's name."""
    return torch.Generator().manual_seed((int(seed) * _SEED_STRIDE + zlib.crc32(name.encode())) % (2**63))


def group_label(table: MetricTable) -> str:
    """``"video"`` for a video-task table, else ``"camera"``."""
    return "video" if table.rows and "video" in table.rows[0] else "camera"


def _score(pred: torch.Tensor, raw: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-frame PSNR/SSIM: CAM protocol for raw-RGB, RVD protocol for packed Bayer (``(T, C, H, W)``)."""
    if raw.shape[-3] == 4:
        return {"psnr": rvd_psnr(pred, raw), "ssim": rvd_ssim(pred, raw)}
    return {"psnr": cam_psnr(pred, raw), "ssim": cam_ssim(pred, raw)}


def _evaluate_images(method: DerenderMethod, dataset: CamDataset | PairFolderDataset, *, group, sampler: Sampler,
                     seed: int, limit: int | None, tile: int, overlap: int, progress: bool) -> MetricTable:
    table = MetricTable(list(METRICS))
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for index in tqdm(range(count), desc=method.name or "eval", disable=not progress, dynamic_ncols=True):
        name, srgb, raw = dataset.load_pair(index)
        mask = sampler(srgb, image_generator(seed, name))
        meta = method.capture(srgb, raw, mask)  # a learned sampler (CAM-style) stores its own choice here
        pred = derender_tiled(method, srgb[None], meta, tile, overlap)
        table.add(_score(pred, raw[None]), camera=group(name), name=name)
    return table


def _srgb_keeping_raw(dataset: RVDDataset, video: str, frames: Sequence[str],
                      truths: list[torch.Tensor]) -> Iterator[torch.Tensor]:
    """Yield a video's sRGB frames lazily, appending each frame's RAW to ``truths`` as it is read."""
    for frame in frames:
        srgb, raw = dataset.load_frame(video, frame)
        truths.append(raw)
        yield srgb


def _evaluate_videos(method: DerenderMethod, dataset: RVDDataset, *, limit: int | None, window: int, tile: int,
                     overlap: int, progress: bool) -> MetricTable:
    table = MetricTable(list(METRICS))
    videos = dataset.videos if limit is None else dataset.videos[:limit]
    for video, frames in videos:
        if len(frames) < 2:
            raise RawMambaError(f"video {video!r} in {dataset.split_dir / 'data.json'} has one frame; the RVD "
                                "protocol scores frames 2..N")
    bar = tqdm(total=sum(len(f) for _, f in videos), desc=method.name or "eval", disable=not progress,
               dynamic_ncols=True)
    for video, frames in videos:
        srgb0, raw0 = dataset.load_frame(video, frames[0])
        meta = Metadata(srgb0, raw0, check_values=False)  # RVD protocol: only the first frame's RAW is given
        truths: list[torch.Tensor] = []  # RAW of the frames read but not yet scored: at most one window
        srgb = _srgb_keeping_raw(dataset, video, frames, truths)
        stream = derender_stream(method, srgb, meta, window=window, tile=tile, overlap=overlap)
        for index, pred in enumerate(stream):
            truth = truths.pop(0)
            if index > 0:  # frame 1 is the metadata frame: never scored
                table.add(_score(pred[None], truth[None]), video=video, frame=frames[index])
            bar.update()
    bar.close()
    return table


def evaluate(method: DerenderMethod | torch.nn.Module, dataset_root: str | Path, *, split: str = "test",
             cameras: Sequence[str] | None = None, limit: int | None = None, window: int = 5,
             sampler: Sampler | str = "grid", seed: int = 0, tile: int = 0, overlap: int = 64,
             cfa: str = "RGGB", progress: bool = True) -> MetricTable:
    """Score ``method`` on the dataset at ``dataset_root`` under its layout's protocol (module docstring).

    Args:
        method: a ``DerenderMethod`` (``NetworkMethod``, a baseline) or a network with RAWMamba's forward.
        dataset_root: a CAM, RVD-Part2 or pair-folder dataset (``detect_layout``).
        split: the split folder (``test``).
        cameras: CAM cameras to evaluate (``None``: every camera folder).
        limit: evaluate only the first ``limit`` images (CAM, pair folder) or videos (RVD).
        window: video frames per ``derender`` call.
        sampler: image metadata sampler or its name (``grid``: one pixel per 8x8 cell).
        seed: base seed of the per-image metadata generators (``image_generator``).
        tile, overlap: tiled inference (``derender_tiled``); ``tile=0`` runs every frame whole (the protocol).
        cfa: Bayer pattern of pair-folder mosaics.
        progress: show tqdm bars.

    Returns:
        A ``MetricTable`` with ``psnr`` and ``ssim`` per image (labels ``camera``, ``name``) or per scored
        frame (labels ``video``, ``frame``); ``table.mean(by=group_label(table))`` is the protocol's average.
    """
    method = as_method(method)
    if limit is not None and limit < 1:
        raise RawMambaError(f"--limit must be at least 1, got {limit}")
    layout, split = detect_layout(dataset_root, split)
    if cameras and layout != "cam":
        raise RawMambaError(f"--cameras applies to CAM-layout data; {dataset_root} has the {layout} layout")
    sampler = make_sampler(sampler) if isinstance(sampler, str) else sampler
    if layout == "rvd":
        dataset = RVDDataset(dataset_root, split, frames=None, reference="video")
        return _evaluate_videos(method, dataset, limit=limit, window=window, tile=tile, overlap=overlap,
                                progress=progress)
    if layout == "cam":
        images = CamDataset(dataset_root, split, cameras=cameras)
        return _evaluate_images(method, images, group=lambda name: name.split("/")[0], sampler=sampler, seed=seed,
                                limit=limit, tile=tile, overlap=overlap, progress=progress)
    folder = PairFolderDataset(dataset_root, cfa=cfa)
    return _evaluate_images(method, folder, group=lambda name: Path(dataset_root).name, sampler=sampler, seed=seed,
                            limit=limit, tile=tile, overlap=overlap, progress=progress)


def _summaries(tables: Mapping[str, MetricTable]) -> tuple[str, list[str], dict[str, dict[str, dict[str, float]]]]:
    """(group label, group names in order, method -> group (and "Average") -> metric -> value)."""
    if not tables:
        raise RawMambaError("no results to show")
    labels = {group_label(t) for t in tables.values()}
    if len(labels) != 1:
        raise RawMambaError(f"cannot put image-task and video-task results in one table ({sorted(labels)})")
    by = labels.pop()
    groups: list[str] = []
    values: dict[str, dict[str, dict[str, float]]] = {}
    for name, table in tables.items():
        means = table.group_means(by)
        groups += [g for g in means if g not in groups]
        values[name] = {**means, "Average": table.mean(by)}
    return by, groups, values


def _number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if math.isfinite(value) else ("inf" if value > 0 else str(value))


def format_markdown(tables: Mapping[str, MetricTable], *, title: str | None = None) -> str:
    """A paper-style Markdown table: one row per camera/video and an ``Average`` row; a PSNR/SSIM column pair
    per method (``tables`` maps the method's name to its ``MetricTable``). PSNR in dB to 2 decimals, SSIM to 4."""
    by, groups, values = _summaries(tables)
    header = [by] + [f"{name} {metric.upper()}" for name in tables for metric in METRICS]
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
    for group in [*groups, "Average"]:
        cells = [f"**{group}**" if group == "Average" else group]
        for name in tables:
            row = values[name].get(group, {})
            cells += [_number(row.get("psnr"), 2), _number(row.get("ssim"), 4)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _json_value(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")


def results_json(tables: Mapping[str, MetricTable], **info: object) -> dict:
    """The results as JSON-ready data: ``{"group_by", "groups", "methods": {name: {"groups", "average", "rows"}},
    **info}``; non-finite numbers (a perfect image's PSNR) are the strings ``"inf"``, ``"-inf"``, ``"nan"``."""
    by, groups, values = _summaries(tables)

    def clean(metrics: Mapping[str, float]) -> dict[str, float | str]:
        return {k: _json_value(v) if isinstance(v, float) else v for k, v in metrics.items()}

    methods = {
        name: {"groups": {g: clean(values[name][g]) for g in groups if g in values[name]},
               "average": clean(values[name]["Average"]),
               "rows": [clean(row) for row in table.rows]}
        for name, table in tables.items()
    }
    return {**info, "group_by": by, "groups": groups, "methods": methods}


def result_paths(out_dir: str | Path) -> tuple[Path, Path]:
    """``(results.md, results.json)`` inside ``out_dir``."""
    out_dir = Path(out_dir)
    return out_dir / "results.md", out_dir / "results.json"


def check_results_free(out_dir: str | Path, *, force: bool) -> None:
    """Refuse (naming the file) if a result file exists in ``out_dir`` and ``force`` is not set."""
    for path in result_paths(out_dir):
        if path.exists() and not force:
            raise RawMambaError(f"{path} already exists; use --force to overwrite")


def write_results(out_dir: str | Path, tables: Mapping[str, MetricTable], *, title: str | None = None,
                  force: bool = False, **info: object) -> tuple[Path, Path]:
    """Write ``results.md`` (``format_markdown``) and ``results.json`` (``results_json``) atomically."""
    check_results_free(out_dir, force=force)
    markdown, data = result_paths(out_dir)
    payload = results_json(tables, **info)
    json.dumps(payload, allow_nan=False)  # strict JSON: fails here, before anything is written
    with atomic_path(markdown) as tmp:
        tmp.write_text(format_markdown(tables, title=title))
    write_json(data, payload)
    return markdown, data
