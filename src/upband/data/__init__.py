"""Training data: corpora built from audio files, random training crops, validation excerpts.

* :mod:`upband.data.corpus` — ``build_corpus`` / ``pack_corpus`` / ``unpack_corpus`` and
  ``Corpus.open``: an index of source files (licence, measured bandwidth, split) and their audio
  in int16 shards; one module per seam (records and index, splits, sources, decoding, staging,
  building, reading, packing).
* :mod:`upband.data.dataset` — ``CropDataset`` (deterministic random crops, degraded on a padded
  crop) and ``build_validation`` (Sulun & Davies' 8 s excerpts).
* :mod:`upband.data.synthetic` — ``synthetic_source``: harmonic test music in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from upband.data.corpus import (
    SPLITS,
    Corpus,
    CorpusSummary,
    FileRecord,
    Piece,
    SplitTotals,
    build_corpus,
    default_min_cutoff,
    pack_corpus,
    split_of,
    unpack_corpus,
)
from upband.data.synthetic import SyntheticSource, synthetic_source

if TYPE_CHECKING:
    from upband.data.dataset import AudioSource, CropDataset, ValItem, build_validation

_LAZY = ("AudioSource", "CropDataset", "ValItem", "build_validation")


def __getattr__(name: str) -> Any:
    """The dataset names import torch: load them on first use, so corpus building (and its
    worker processes) stays torch-free."""
    if name in _LAZY:
        from upband.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SPLITS", "AudioSource", "Corpus", "CorpusSummary", "CropDataset", "FileRecord", "Piece",
    "SplitTotals", "SyntheticSource", "ValItem", "build_corpus", "build_validation",
    "default_min_cutoff", "pack_corpus", "split_of", "synthetic_source", "unpack_corpus",
]
