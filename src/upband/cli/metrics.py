"""``upband metrics``: score an estimate against its reference (:func:`upband.metrics.compute_all`
on the pair of :func:`upband.metrics.pairing.pair_files`)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from upband.cli.base import EXIT_OK, input_files
from upband.common.clock import format_clock
from upband.common.jsonnum import dumps_strict, json_number
from upband.errors import SpecError
from upband.metrics import compute_all
from upband.metrics.pairing import pair_files

DESCRIPTION = ("SNR, segmental SNR, SI-SDR, the three LSD definitions, high-band LSD/SNR, "
               "spectral MSE and ViSQOL (when installed). Rates are matched by resampling the "
               "estimate, lengths by cropping to the shorter.")

_DB = "{:8.3f} dB"
#: How each metric is printed (others: four decimals, no unit).
_UNITS: dict[str, Callable[[float], str]] = {
    "snr": _DB.format, "segmental_snr": _DB.format, "si_sdr": _DB.format,
    "snr_high": _DB.format, "lsd_db": _DB.format, "lsd_db_high": _DB.format,
    "visqol": "{:8.3f} MOS-LQO".format,
}


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband metrics``."""
    p.description = DESCRIPTION
    p.add_argument("reference", type=Path, metavar="REFERENCE")
    p.add_argument("estimate", type=Path, metavar="ESTIMATE")
    p.add_argument("--cutoff", type=float, metavar="HZ",
                   help="also score the band above HZ (LSD and SNR)")
    p.add_argument("--align", action="store_true",
                   help="remove a delay of up to 1 s between the files (cross-correlation)")
    p.add_argument("--no-visqol", action="store_true", help="skip ViSQOL even if installed")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pair the two files, score them and print the metrics."""
    with input_files():
        pair = pair_files(args.reference, args.estimate, align=args.align)
    sr = pair.sample_rate
    if args.cutoff is not None and not 0 < args.cutoff < sr / 2:
        raise SpecError(f"--cutoff must lie between 0 and {sr / 2:g} Hz")
    values = compute_all(pair.reference, pair.estimate, sr, args.cutoff,
                         with_visqol=not args.no_visqol)
    if args.json:
        print(dumps_strict({"reference": str(args.reference), "estimate": str(args.estimate),
                            "sample_rate": sr, "frames": pair.frames, "lag": pair.lag,
                            "notes": list(pair.notes),
                            "metrics": {k: json_number(v) for k, v in values.items()}}))
        return EXIT_OK
    for note in pair.notes:
        print(f"note: {note}")
    print(f"{args.reference} vs {args.estimate}: {sr} Hz, {pair.reference.shape[0]} ch, "
          f"{format_clock(pair.frames / sr)}")
    for key, value in values.items():
        print(f"  {key:<18} {format_metric(key, value)}")
    return EXIT_OK


def format_metric(key: str, value: float) -> str:
    """``value`` of the metric ``key`` as printed: fixed width, with its unit."""
    if math.isinf(value):
        return f"{'+inf' if value > 0 else '-inf':>8}" + (" dB" if "snr" in key else "")
    return _UNITS.get(key, "{:8.4f}".format)(value)
