"""``MetricTable``: collect per-image / per-frame metric rows and average them by group.

Each row has string labels (``camera="sony"``, ``video="v01"``, ``name="0001"``) and float metrics
(``psnr``, ``ssim``). ``mean()`` is the plain mean over rows (CAM protocol: mean over test images);
``mean(by="video")`` first averages inside each group and then over groups (RVD protocol: per-video mean,
then mean over videos). ``format(by=...)`` renders the per-group means plus the overall line as text for
the evaluation and benchmark commands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from rawmamba.errors import RawMambaError

__all__ = ["MetricTable"]


def _as_floats(value: float | torch.Tensor, name: str) -> list[float]:
    if isinstance(value, torch.Tensor):
        if value.dim() > 1:
            raise RawMambaError(f"metric {name!r} must be a scalar or a 1-D tensor, got shape {tuple(value.shape)}")
        return [float(v) for v in value.detach().to(torch.float64).cpu().reshape(-1)]
    return [float(value)]


class MetricTable:
    """Rows of labelled metric values with means overall and by group.

    Args:
        metrics: the metric names every row must carry, in display order; ``None`` takes them from the
            first row added.
    """

    def __init__(self, metrics: list[str] | None = None) -> None:
        self._metric_names: list[str] | None = list(metrics) if metrics is not None else None
        self._rows: list[tuple[dict[str, str], dict[str, float]]] = []

    @property
    def metric_names(self) -> list[str]:
        """The metric columns, in display order."""
        return list(self._metric_names or [])

    @property
    def rows(self) -> list[dict[str, str | float]]:
        """Every row as one dict of labels and metrics, in insertion order."""
        return [{**labels, **values} for labels, values in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, metrics: Mapping[str, float | torch.Tensor], **labels: str) -> None:
        """Add rows: scalar metrics add one row; 1-D tensors of length ``n`` add ``n`` rows (one per image or
        frame, e.g. the output of ``rvd_psnr`` for one video) sharing the same labels.

        Args:
            metrics: metric name -> value; the names must be the table's metric names.
            labels: string labels of the row(s) (``video="v01"``, ``camera="sony"``).
        """
        if self._metric_names is None:
            self._metric_names = list(metrics)
        if set(metrics) != set(self._metric_names):
            raise RawMambaError(f"metrics {sorted(metrics)} do not match the table's columns {self._metric_names}")
        columns = {name: _as_floats(v, name) for name, v in metrics.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise RawMambaError(f"metrics to add have different lengths: { {k: len(v) for k, v in columns.items()} }")
        clean = {str(k): str(v) for k, v in labels.items()}
        for i in range(lengths.pop()):
            self._rows.append((clean, {name: columns[name][i] for name in self._metric_names}))

    def _rows_with(self, by: str) -> list[tuple[dict[str, str], dict[str, float]]]:
        missing = [labels for labels, _ in self._rows if by not in labels]
        if missing:
            raise RawMambaError(f"{len(missing)} row(s) have no label {by!r} to group by")
        return self._rows

    def group_means(self, by: str) -> dict[str, dict[str, float]]:
        """Mean of every metric inside each group of label ``by``, groups in first-seen order."""
        sums: dict[str, dict[str, float]] = {}
        counts: dict[str, int] = {}
        for labels, values in self._rows_with(by):
            key = labels[by]
            acc = sums.setdefault(key, dict.fromkeys(self.metric_names, 0.0))
            for name, v in values.items():
                acc[name] += v
            counts[key] = counts.get(key, 0) + 1
        return {k: {name: s / counts[k] for name, s in acc.items()} for k, acc in sums.items()}

    def mean(self, by: str | None = None) -> dict[str, float]:
        """Overall means: over rows when ``by`` is None, else the mean of the per-group means.

        An ``inf`` value (a perfect image's PSNR) makes its mean ``inf``; an empty table is an error.
        """
        if not self._rows:
            raise RawMambaError("the metric table is empty: nothing to average")
        if by is None:
            groups = [values for _, values in self._rows]
        else:
            groups = list(self.group_means(by).values())
        return {name: math.fsum(g[name] for g in groups) / len(groups) for name in self.metric_names}

    def format(self, by: str | None = None, *, digits: int = 4, overall: str = "mean") -> str:
        """Text table: one line per group of ``by`` (if given) and a final line ``overall`` with ``mean(by)``.

        Args:
            by: label to group by, or None for the overall line alone.
            digits: decimals shown for every metric.
            overall: the name printed on the overall line.
        """
        lines: list[tuple[str, dict[str, float]]] = []
        if by is not None:
            lines.extend(self.group_means(by).items())
        lines.append((overall, self.mean(by)))
        first = by or ""
        width = max(len(first), *(len(k) for k, _ in lines))
        cols = [max(len(n), digits + 4) for n in self.metric_names]
        header = first.ljust(width) + "".join(f"  {n:>{c}}" for n, c in zip(self.metric_names, cols, strict=True))
        body = [k.ljust(width) + "".join(f"  {v[n]:>{c}.{digits}f}" for n, c in zip(self.metric_names, cols,
                                                                                  strict=True))
                for k, v in lines]
        return "\n".join([header, *body])
