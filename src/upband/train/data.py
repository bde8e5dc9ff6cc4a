"""What the loop trains and validates on, and the order it sees it in.

**Data order is a pure function of the step.** Iteration ``s`` (0-based) of rank ``r`` in a
world of ``W`` processes trains on dataset indices ``s·B·W + r·B + [0, B)``
(:class:`StepBatchSampler`), and :class:`~upband.data.dataset.CropDataset` example ``i``
depends only on ``(seed, i)``. So a run resumed from the checkpoint of step ``k`` sees exactly
what an uninterrupted run sees after step ``k``, whatever the number of DataLoader workers, and
every rank sees other data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from upband.data import Corpus, CropDataset, build_validation, synthetic_source
from upband.models import MODELS
from upband.train.config import Config, ConfigError

__all__ = ["StepBatchSampler", "TrainData", "build_data", "collate_pairs", "open_source"]


@dataclass
class TrainData:
    """What the loop trains and validates on.

    ``dataset[i]`` -> a dict of tensors, deterministic per index (for the regression task
    ``{"input": Tensor[C, T], "target": Tensor[C, T], ...}``); ``validation`` maps group names
    (``"seen"`` / ``"unseen"``) to lists of items the task's ``validate`` understands (for the
    regression task :class:`upband.data.ValItem` with ``name``, ``clean`` and ``degraded``
    float ``[C, T]`` arrays), or is ``None`` (no validation).
    """

    dataset: Dataset[dict[str, Any]]
    validation: dict[str, list[Any]] | None = None


def open_source(config: Config) -> Any:
    """The audio source of ``data.corpus``: a corpus folder, or the synthetic test source."""
    data = config.data
    if data.corpus == "synthetic":
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.synthetic.items()}
        try:
            return synthetic_source(sample_rate=data.sample_rate, seed=config.train.seed,
                                    channels=data.channels, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"data.synthetic: {exc}") from exc
    source = Corpus.open(data.corpus)
    if int(source.sample_rate) != data.sample_rate:
        raise ConfigError(
            f"corpus {data.corpus} is at {source.sample_rate} Hz but data.sample_rate is "
            f"{data.sample_rate}; build a corpus at that rate (upband corpus build ... "
            f"--sample-rate {data.sample_rate}) or set data.sample_rate={source.sample_rate}")
    return source


def build_data(config: Config, *, world_size: int = 1, validation: bool = True) -> TrainData:
    """The training dataset and (with ``validation``) the seen / unseen validation items.

    The dataset is long enough for ``train.max_steps`` iterations of ``world_size`` ranks.
    """
    source = open_source(config)
    d, t, v = config.data, config.train, config.validation
    length = max(1, t.max_steps * t.batch_size * world_size)
    dataset = CropDataset(source, "train", crop_samples=d.crop_samples, preset=d.preset,
                          channels=d.channels, seed=t.seed, gain_db=d.gain_db,
                          context_samples=d.context_samples, length=length,
                          cutoffs=model_takes_cutoff(config), cutoff_under=d.cutoff_under)
    items = None
    if validation and (v.every > 0 or v.at_start):
        common: dict[str, Any] = {"seconds": v.seconds, "offset_seconds": v.offset_seconds,
                                  "max_files": v.max_files, "channels": d.channels,
                                  "context_samples": d.context_samples, "seed": t.seed}
        items = {"seen": build_validation(source, v.split, preset=config.seen_preset, **common)}
        if v.unseen_preset:
            items["unseen"] = build_validation(source, v.split, preset=v.unseen_preset, **common)
    return TrainData(dataset, items)


class StepBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices for iterations ``start .. stop - 1``: iteration ``s`` of rank
    ``r`` gets ``s·B·W + r·B + [0, B)`` (a pure function of the step)."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.start, self.stop = int(start), int(stop)
        self.batch_size, self.rank, self.world_size = int(batch_size), int(rank), int(world_size)

    @staticmethod
    def indices(step: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[int]:
        """The dataset indices of iteration ``step`` of ``rank``."""
        first = step * batch_size * world_size + rank * batch_size
        return list(range(first, first + batch_size))

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield self.indices(step, self.batch_size, self.rank, self.world_size)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def model_takes_cutoff(config: Config) -> bool:
    """Whether the run's network is told the input's cutoff (its crops then carry one)."""
    factory = MODELS.get(config.model.name)
    return bool(factory is not None and factory.cls.takes_cutoff)


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the ``input`` and ``target`` tensors of the items, and their ``cutoff_hz`` into a
    ``[B]`` tensor when they have one (other keys are dropped)."""
    batch = {"input": torch.stack([it["input"] for it in items]),
             "target": torch.stack([it["target"] for it in items])}
    if items and "cutoff_hz" in items[0]:
        batch["cutoff_hz"] = torch.tensor([it["cutoff_hz"] for it in items], dtype=torch.float32)
    return batch
