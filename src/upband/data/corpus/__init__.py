"""Training corpora: an index of source files plus their audio packed into shards.

A corpus is a folder::

    corpus.json              what it is: format version, sample rate, channels, storage, split
                             fractions, totals per split, the shard list with sizes and sha256
    index.jsonl              one :class:`FileRecord` per source file, packed or skipped
    shards/{split}-{NNNNN}.npy   int16 [channels, N]: the split's files one after another
                             (``.flac`` / ``.opus`` after :func:`pack_corpus`)

The modules, one per seam:

* :mod:`~upband.data.corpus.records` — the folder's layout, :class:`FileRecord`, the index and
  description files, the int16 sample format.
* :mod:`~upband.data.corpus.splits` — the hash split of a file id and forced split lists.
* :mod:`~upband.data.corpus.sources` — finding the audio files of the sources.
* :mod:`~upband.data.corpus.decode` — one file into corpus samples (worker processes): decode,
  measure the bandwidth, skip or resample, convert channels, quantise.
* :mod:`~upband.data.corpus.staging` — writing a corpus: staging folder, ``.npy`` shards, commit.
* :mod:`~upband.data.corpus.build` — :func:`build_corpus`: index, deduplicate, decode, pack.
* :mod:`~upband.data.corpus.reading` — :class:`Corpus`: a built corpus opened read-only.
* :mod:`~upband.data.corpus.packing` — :func:`pack_corpus` / :func:`unpack_corpus`: FLAC or
  Opus shards under a size limit, and back to ``.npy``.

:func:`build_corpus` finds audio files under the sources, decodes them in worker processes,
measures each file's real bandwidth on the *original* audio (:mod:`upband.analysis`), resamples
it with libsoxr to the corpus rate, converts the channels and quantises to int16 (rounding, no
dither). Files whose own cutoff is below ``min_cutoff_hz``, silent files, byte-for-byte
duplicates and files that fail to decode are kept in the index with the reason in ``skipped`` and
are not packed. The build happens in a hidden sibling folder renamed into place at the end, so an
interrupted build never looks like a corpus. **Splits** are by file, by a hash of the file's id
(``{source name}/{path relative to the source}``), so adding files never moves an existing file
to another split.

List the test files of a corpus (the held-out set)::

    python -c "import json,sys; [print(r['id']) for r in map(json.loads, open(sys.argv[1]))
               if r['split'] == 'test' and not r['skipped']]" CORPUS/index.jsonl
"""

from __future__ import annotations

from upband.data.corpus.build import MIN_CUTOFF_FRACTION, build_corpus, default_min_cutoff
from upband.data.corpus.decode import TRUNCATION_TOLERANCE_S, convert_channels
from upband.data.corpus.packing import MIN_PACK_FRAMES, OPUS_RATES, pack_corpus, unpack_corpus
from upband.data.corpus.reading import Corpus, open_corpus
from upband.data.corpus.records import (
    CORPUS_FORMAT,
    CORPUS_VERSION,
    INDEX_NAME,
    INT16_SCALE,
    META_NAME,
    SHARD_DIR,
    SPLITS,
    STORAGES,
    CorpusSummary,
    FileRecord,
    Piece,
    SplitTotals,
    quantize,
)
from upband.data.corpus.sources import DEFAULT_LICENCE, Source, find_sources, parse_source
from upband.data.corpus.splits import (
    DEFAULT_SPLITS,
    check_splits,
    hash_fraction,
    parse_splits,
    read_split_lists,
    split_of,
)

__all__ = [
    "CORPUS_FORMAT", "CORPUS_VERSION", "DEFAULT_LICENCE", "DEFAULT_SPLITS", "INDEX_NAME",
    "INT16_SCALE", "META_NAME", "MIN_CUTOFF_FRACTION", "MIN_PACK_FRAMES", "OPUS_RATES",
    "SHARD_DIR", "SPLITS", "STORAGES", "TRUNCATION_TOLERANCE_S", "Corpus", "CorpusSummary",
    "FileRecord", "Piece", "Source", "SplitTotals", "build_corpus", "check_splits",
    "convert_channels", "default_min_cutoff", "find_sources", "hash_fraction", "open_corpus",
    "pack_corpus", "parse_source", "parse_splits", "quantize", "read_split_lists", "split_of",
    "unpack_corpus",
]
