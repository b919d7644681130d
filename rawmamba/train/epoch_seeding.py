"""Reproducible augmentation: every training item's random crop, flips and metadata samples are a pure function
of ``(seed, epoch, index)``.

Our datasets draw an item's randomness from a generator seeded by ``(dataset.seed, index)``
(``rawmamba.data.items.item_generator``; ``seed=None``: OS entropy). For training we want fresh augmentation in
every epoch *and* the same augmentation again after an interruption, so that a resumed run continues exactly
as the uninterrupted one would (``rawmamba train --resume``). Two small pieces do that without touching the
datasets:

- :class:`EpochIndexSampler` wraps the sampler and encodes the epoch in the index it yields:
  ``epoch * len(dataset) + index``. The sampler lives in the main process, so ``set_epoch`` reaches it even
  when persistent data-loader workers hold their own copies of the dataset.
- :class:`EpochSeededItems` wraps the dataset, decodes ``(epoch, index)`` and sets the dataset's ``seed`` to a
  value derived from ``(seed, epoch)`` before reading item ``index``.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, Sampler

_STRIDE = 1_000_003  # a prime; (seed, epoch) -> one 62-bit seed


class EpochIndexSampler(Sampler[int]):
    """``sampler``'s indices, offset by ``epoch * length``; forwards ``set_epoch`` to ``sampler``."""

    def __init__(self, sampler: Sampler[int], length: int) -> None:
        self.sampler, self.length, self.epoch = sampler, length, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return (self.epoch * self.length + index for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class EpochSeededItems(Dataset):
    """``dataset`` read with indices from :class:`EpochIndexSampler`; item ``index`` of epoch ``epoch`` is drawn
    with ``dataset.seed = f(seed, epoch)``, so its augmentation depends on ``(seed, epoch, index)`` only.

    ``dataset`` must take its per-item randomness from ``item_generator(dataset.seed, index)``."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        if not hasattr(dataset, "seed"):
            raise TypeError(f"{type(dataset).__name__} has no 'seed' attribute to draw its augmentation from")
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, encoded: int) -> dict:
        epoch, index = divmod(int(encoded), len(self.dataset))
        self.dataset.seed = (self.seed * _STRIDE + epoch) % (1 << 62)
        return self.dataset[index]
