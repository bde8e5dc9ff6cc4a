"""``upband degrade``: write a band-limited or lossy version of a file
(:func:`upband.degrade.apply`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from upband import audio, degrade
from upband.cli.base import EXIT_OK, input_files
from upband.degrade.resampling import METHODS
from upband.errors import SpecError
from upband.fsutil import refuse_input_as_output

DESCRIPTION = ("Degrade a file the way the papers do: a low-pass filter, an MP3/Opus round trip, "
               "decimation, or a random draw from a preset.")
#: ``--seed`` of a preset draw when none is given.
DEFAULT_SEED = 0


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband degrade``."""
    p.description = DESCRIPTION
    p.add_argument("input", type=Path, metavar="INPUT")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUTPUT",
                   help=".wav or .flac to write")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--filter", metavar="SPEC",
                     help="low-pass filter spec, e.g. cheby1:6, ellip:12,rp=0.05,rs=20, "
                     "butter:6,causal, stft, subsample (needs --cutoff)")
    how.add_argument("--mp3", type=int, metavar="KBPS", help="LAME MP3 round trip (CBR)")
    how.add_argument("--opus", type=int, metavar="KBPS", help="Opus round trip")
    how.add_argument("--downsample", type=int, metavar="R",
                     help="decimate by R (Chebyshev-I 8 anti-alias) and interpolate back")
    how.add_argument("--preset", metavar="NAME",
                     help="draw a degradation from a preset (see 'upband presets')")
    p.add_argument("--cutoff", type=float, metavar="HZ", help="cutoff of --filter in Hz")
    p.add_argument("--upsample", default=METHODS[0], choices=METHODS,
                   help=f"how --downsample interpolates back (default: {METHODS[0]}, as Kuleshov)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the --preset draw (default {DEFAULT_SEED})")
    p.add_argument("--bit-depth", metavar="16|24|32f",
                   help="output sample format (default: the input's)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite OUTPUT")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Degrade INPUT into OUTPUT; exit status 1 if INPUT cannot be read or OUTPUT written."""
    refuse_input_as_output(args.input, args.output)
    if args.filter is not None and args.cutoff is None:
        raise SpecError("--filter needs --cutoff HZ")
    if args.cutoff is not None and args.filter is None:
        raise SpecError("--cutoff goes with --filter")
    with input_files():
        src = audio.info(args.input)
    subtype = audio.output_subtype(src, args.bit_depth)
    audio.output_format(args.output)  # fail on a bad extension before the work
    with input_files():
        x, sr = audio.read(args.input)
    params = _params(args, sr)
    y = degrade.apply(x, sr, params)
    with input_files():
        audio.write(args.output, y, sr, subtype=subtype, overwrite=args.force)
    if args.json:
        print(json.dumps({"input": str(args.input), "output": str(args.output),
                          "sample_rate": sr, "subtype": subtype,
                          "degradation": params.to_dict()}, indent=2))
    else:
        print(f"{args.output}: {params} ({sr} Hz, {subtype})")
    return EXIT_OK


def _params(args: argparse.Namespace, sr: int) -> degrade.Params:
    """The degradation the options ask for (a preset is drawn with ``--seed``)."""
    if args.preset is not None:
        return degrade.sample(args.preset, np.random.default_rng(args.seed), sr=sr)
    if args.filter is not None:
        return degrade.Lowpass(args.cutoff, degrade.FilterSpec.parse(args.filter))
    if args.mp3 is not None:
        return degrade.Codec("mp3", bitrate_kbps=args.mp3)
    if args.opus is not None:
        return degrade.Codec("opus", bitrate_kbps=args.opus)
    return degrade.Decimate(args.downsample, args.upsample)
