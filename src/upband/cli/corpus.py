"""``upband corpus build|pack|unpack|info``: training corpora (:mod:`upband.data.corpus`)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from upband.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STATUS_HELP,
    Parser,
    defaults_of,
    input_files,
)
from upband.data.corpus import (
    DEFAULT_SPLITS,
    STORAGES,
    Corpus,
    build_corpus,
    pack_corpus,
    parse_splits,
    read_split_lists,
    unpack_corpus,
)

DESCRIPTION = ("Training corpora: decoded, bandwidth-checked, split by file and packed into "
               "shards for fast random crops.")
#: The storages a corpus can be packed into (``npy`` is what building and unpacking write).
PACK_CODECS = tuple(s for s in STORAGES if s != "npy")
#: Files skipped for this reason count as files that could not be processed (exit status 1).
FAILED_SKIP = "error"


def configure(corpus: argparse.ArgumentParser) -> None:
    """The actions of ``upband corpus`` and their options."""
    corpus.description = DESCRIPTION
    actions = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", parser_class=Parser)
    actions.required = True
    _configure_build(actions.add_parser(
        "build", help="build a corpus from audio files and folders",
        description="Find audio files recursively, decode them in worker processes, measure "
        "each file's bandwidth, skip files whose own cutoff is too low, split train/validation/"
        "test by file with a stable hash and write an index plus shards. A source may carry its "
        "licence as PATH::LICENCE. Files that fail to decode are skipped; the exit status is "
        "then 1.", epilog=EXIT_STATUS_HELP))
    pack_defaults = defaults_of(pack_corpus)
    p = actions.add_parser(
        "pack", help="re-pack shards as FLAC/Opus files of at most N MiB",
        description="Re-pack a corpus into compressed files of at most --max-mib MiB each, to "
        "carry it to another machine. FLAC is lossless; Opus is lossy (nothing above 20 kHz) "
        "and must not serve as a high-frequency training reference.", epilog=EXIT_STATUS_HELP)
    p.add_argument("corpus", type=Path, metavar="CORPUS")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    p.add_argument("--codec", default=pack_defaults["codec"], choices=PACK_CODECS)
    p.add_argument("--max-mib", type=float, default=pack_defaults["max_mib"], metavar="MIB")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run_pack)
    p = actions.add_parser("unpack", help="turn a packed corpus back into .npy shards",
                           epilog=EXIT_STATUS_HELP)
    p.add_argument("corpus", type=Path, metavar="CORPUS")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run_pack)
    p = actions.add_parser("info", help="hours per split, skipped files, licences",
                           epilog=EXIT_STATUS_HELP)
    p.add_argument("corpus", type=Path, metavar="CORPUS")
    p.add_argument("--verify", action="store_true", help="check every shard's sha256")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_info)


def _configure_build(p: argparse.ArgumentParser) -> None:
    defaults = defaults_of(build_corpus)
    p.add_argument("sources", nargs="+", metavar="SOURCE[::LICENCE]")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="CORPUS")
    p.add_argument("--sample-rate", type=int, default=defaults["sample_rate"], metavar="HZ")
    p.add_argument("--channels", type=int, default=defaults["channels"], choices=(1, 2))
    p.add_argument("--min-cutoff", type=float, metavar="HZ",
                   help="skip files band-limited below this (default: 16 kHz at 44.1 kHz, the "
                   "same fraction of Nyquist at other rates)")
    p.add_argument("--splits", default=",".join(f"{f:g}" for f in DEFAULT_SPLITS),
                   metavar="TRAIN,VAL,TEST")
    p.add_argument("--split-list", type=Path, metavar="FILE",
                   help="force files into splits (JSON or 'SPLIT PATTERN' lines)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="leave out matching files (repeatable)")
    p.add_argument("-j", "--workers", type=int, metavar="N", help="decoding processes")
    p.add_argument("--shard-seconds", type=float, default=defaults["shard_seconds"],
                   metavar="S")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing corpus")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    """Build the corpus; print its summary and the build's warnings."""
    split_lists = read_split_lists(args.split_list) if args.split_list else None
    with warnings.catch_warnings(record=True) as caught, input_files():
        warnings.simplefilter("always", UserWarning)
        summary = build_corpus(
            args.sources, args.output, sample_rate=args.sample_rate, channels=args.channels,
            min_cutoff_hz=args.min_cutoff, splits=parse_splits(args.splits),
            split_lists=split_lists, workers=args.workers, shard_seconds=args.shard_seconds,
            exclude=args.exclude, overwrite=args.force, progress=not args.quiet)
    for w in caught:
        print(f"upband: warning: {w.message}", file=sys.stderr)
    print(summary.format())
    return EXIT_FAILED if summary.skipped.get(FAILED_SKIP) else EXIT_OK


def run_pack(args: argparse.Namespace) -> int:
    """Pack (FLAC/Opus) or unpack (``.npy``) a corpus into a new folder."""
    with input_files():
        if args.corpus_command == "pack":
            summary = pack_corpus(args.corpus, args.output, codec=args.codec,
                                  max_mib=args.max_mib, overwrite=args.force,
                                  progress=not args.quiet)
        else:
            summary = unpack_corpus(args.corpus, args.output, overwrite=args.force,
                                    progress=not args.quiet)
    print(summary.format())
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    """Print a corpus's summary; with ``--verify``, exit status 1 if a shard fails its sha256."""
    with input_files():
        c = Corpus.open(args.corpus)
        summary = c.summary()
        bad = c.verify() if args.verify else []
    if args.json:
        print(json.dumps({**summary.to_dict(), "bad_shards": bad}, indent=2, default=str))
    else:
        print(summary.format())
        if args.verify:
            print("shards: all match their sha256" if not bad else
                  f"shards failing their sha256: {', '.join(bad)}")
    return EXIT_FAILED if bad else EXIT_OK
