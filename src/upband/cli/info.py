"""``upband info``: describe audio files (:func:`upband.audio.info`) and their bandwidth
(:func:`upband.analysis.detect_file`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from upband import audio
from upband.analysis import detect_file
from upband.cli.base import EXIT_FAILED, EXIT_OK, print_error
from upband.common.clock import format_clock
from upband.errors import UpbandError

DESCRIPTION = ("Describe audio files: rate, channels, duration, format/subtype, detected cutoff "
               "and codec guess. A file that cannot be read is reported and skipped; the exit "
               "status is then 1.")


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband info``."""
    p.description = DESCRIPTION
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--no-detect", action="store_true", help="skip the bandwidth detector")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Describe every file; exit status 1 if one could not be read."""
    records, failed = [], 0
    for path in args.files:
        try:
            i = audio.info(path)
            record = describe(path, i, detect=not args.no_detect)
        except UpbandError as err:
            failed += 1
            print_error(str(err))
            continue
        records.append(record)
        if not args.json:
            line = (f"{path}: {i.sample_rate} Hz, {i.channels} ch, {format_clock(i.duration)}, "
                    f"{i.format}/{i.subtype}")
            print(line + (f"; {record['summary']}" if "summary" in record else ""))
    if args.json:
        print(json.dumps(records, indent=2))
    return EXIT_FAILED if failed else EXIT_OK


def describe(path: Path, i: audio.AudioInfo, *, detect: bool) -> dict[str, Any]:
    """The ``--json`` record of the file at ``path`` (whose :func:`upband.audio.info` is ``i``):
    its format and, with ``detect``, its bandwidth."""
    record: dict[str, Any] = {
        "path": str(path), "sample_rate": i.sample_rate, "channels": i.channels,
        "frames": i.frames, "duration_s": round(i.duration, 6), "format": i.format,
        "subtype": i.subtype}
    if detect:
        found = detect_file(path)
        record["bandwidth"] = found.to_dict()
        record["summary"] = found.summary()
    return record
