"""The ``upband`` command line: argument parsing only; the work is done by the library.

Every user error prints one line, ``upband: error: <what went wrong>``, on stderr and exits with
status 2; an interrupted run exits with 130. Set ``UPBAND_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from upband import __version__
from upband.errors import SpecError, UpbandError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, f"upband: error: {message}{hint}\n")


def get_parser() -> argparse.ArgumentParser:
    """The ``upband`` parser with all its subcommands."""
    parser = _Parser(prog="upband", description="Restore the high frequencies that music lost.")
    parser.add_argument("--version", action="version", version=f"upband {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("enhance", help="restore the high band of music files",
                       description="Restore the missing high frequencies of audio files. One "
                       "input and -o FILE.wav|.flac writes that file; otherwise outputs go into "
                       "the -o folder (default: next to each input), named by --filename and "
                       "mirroring input folders. Existing outputs are kept unless --force, so a "
                       "re-run finishes an interrupted batch.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="files or folders")
    p.add_argument("-o", "--output", type=Path, metavar="OUTPUT",
                   help="output file (one input) or folder")
    p.add_argument("--model", metavar="NAME|PATH",
                   help="pretrained model name (see 'upband models') or a .safetensors "
                   "checkpoint (default: the shipped default model)")
    p.add_argument("-d", "--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the model runs (default: CUDA when present)")
    p.add_argument("--sample-rate", type=int, metavar="HZ",
                   help="output rate (default: the input's from 44.1 kHz up, else 44.1/48 kHz)")
    p.add_argument("--bit-depth", metavar="16|24|32f", help="output sample format "
                   "(default: the input's; lossy inputs give 24-bit)")
    p.add_argument("--format", choices=("wav", "flac"),
                   help="output container for folder outputs (default: wav for wav inputs, "
                   "else flac)")
    p.add_argument("--filename", default="{stem}.upband.{ext}", metavar="TEMPLATE",
                   help="output name in folder mode, fields {stem} {ext} "
                   "(default: {stem}.upband.{ext})")
    p.add_argument("-r", "--recursive", action="store_true", help="search folders recursively")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--chunk-seconds", type=float, default=10.0, metavar="S",
                   help="audio per model call (default 10; memory grows with it)")
    p.add_argument("--overlap-seconds", type=float, default=0.25, metavar="S",
                   help="cross-fade between chunks (default 0.25)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="chunks per model call (default: 1 on CPU, 8 on CUDA)")
    p.add_argument("--no-merge", action="store_true",
                   help="use the model's output for the whole band instead of keeping the "
                   "input's own content below its cutoff")
    p.add_argument("--clip-mode", default="rescale", choices=("rescale", "clamp", "none"),
                   help="output above full scale: scale the file down (default), clip, or "
                   "leave (float outputs)")
    p.add_argument("--report", type=Path, metavar="FILE.json",
                   help="write what was detected and done per file as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file lines")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print each file's detected bandwidth")
    p.set_defaults(func=_enhance)

    p = sub.add_parser("info", help="rate, channels, length, format and detected bandwidth",
                       description="Describe audio files: rate, channels, duration, "
                       "format/subtype, detected cutoff and codec guess.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--no-detect", action="store_true", help="skip the bandwidth detector")
    p.set_defaults(func=_info)

    p = sub.add_parser("degrade", help="simulate a band-limited or lossy version of a file",
                       description="Degrade a file the way the papers do: a low-pass filter, "
                       "an MP3/Opus round trip, decimation, or a random draw from a preset.")
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
    p.add_argument("--upsample", default="spline", choices=("spline", "sinc", "zoh"),
                   help="how --downsample interpolates back (default: spline, as Kuleshov)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --preset draw (default 0)")
    p.add_argument("--bit-depth", metavar="16|24|32f",
                   help="output sample format (default: the input's)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite OUTPUT")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.set_defaults(func=_degrade)

    p = sub.add_parser("presets", help="list the degradation presets",
                       description="List the named degradation presets and their sources.")
    p.set_defaults(func=_presets)

    p = sub.add_parser("metrics", help="compare an estimate with its reference",
                       description="SNR, segmental SNR, SI-SDR, the three LSD definitions, "
                       "high-band LSD/SNR, spectral MSE and ViSQOL (when installed). Rates are "
                       "matched by resampling the estimate, lengths by cropping to the shorter.")
    p.add_argument("reference", type=Path, metavar="REFERENCE")
    p.add_argument("estimate", type=Path, metavar="ESTIMATE")
    p.add_argument("--cutoff", type=float, metavar="HZ",
                   help="also score the band above HZ (LSD and SNR)")
    p.add_argument("--align", action="store_true",
                   help="remove a delay of up to 1 s between the files (cross-correlation)")
    p.add_argument("--no-visqol", action="store_true", help="skip ViSQOL even if installed")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=_metrics)

    corpus = sub.add_parser("corpus", help="build, pack and inspect training corpora",
                            description="Training corpora: decoded, bandwidth-checked, split by "
                            "file and packed into shards for fast random crops.")
    csub = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", parser_class=_Parser)
    csub.required = True
    p = csub.add_parser("build", help="build a corpus from audio files and folders",
                        description="Find audio files recursively, decode them in worker "
                        "processes, measure each file's bandwidth, skip files whose own cutoff "
                        "is too low, split train/validation/test by file with a stable hash and "
                        "write an index plus shards. A source may carry its licence as "
                        "PATH::LICENCE.")
    p.add_argument("sources", nargs="+", metavar="SOURCE[::LICENCE]")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="CORPUS")
    p.add_argument("--sample-rate", type=int, default=44100, metavar="HZ")
    p.add_argument("--channels", type=int, default=2, choices=(1, 2))
    p.add_argument("--min-cutoff", type=float, metavar="HZ",
                   help="skip files band-limited below this (default: 16 kHz at 44.1 kHz, the "
                   "same fraction of Nyquist at other rates)")
    p.add_argument("--splits", default="0.9,0.05,0.05", metavar="TRAIN,VAL,TEST")
    p.add_argument("--split-list", type=Path, metavar="FILE",
                   help="force files into splits (JSON or 'SPLIT PATTERN' lines)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="leave out matching files (repeatable)")
    p.add_argument("-j", "--workers", type=int, metavar="N", help="decoding processes")
    p.add_argument("--shard-seconds", type=float, default=600.0, metavar="S")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing corpus")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_corpus_build)
    p = csub.add_parser("pack", help="re-pack shards as FLAC/Opus files of at most N MiB",
                        description="Re-pack a corpus into compressed files of at most "
                        "--max-mib MiB each, to carry it to another machine. FLAC is lossless; "
                        "Opus is lossy (nothing above 20 kHz) and must not serve as a "
                        "high-frequency training reference.")
    p.add_argument("corpus", type=Path, metavar="CORPUS")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    p.add_argument("--codec", default="flac", choices=("flac", "opus"))
    p.add_argument("--max-mib", type=float, default=60.0, metavar="MIB")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_corpus_pack)
    p = csub.add_parser("unpack", help="turn a packed corpus back into .npy shards")
    p.add_argument("corpus", type=Path, metavar="CORPUS")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_corpus_pack)
    p = csub.add_parser("info", help="hours per split, skipped files, licences")
    p.add_argument("corpus", type=Path, metavar="CORPUS")
    p.add_argument("--verify", action="store_true", help="check every shard's sha256")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_corpus_info)

    p = sub.add_parser("train", help="train a model from a recipe (configs/*.toml)",
                       description="Train a model from a TOML recipe with KEY=VALUE overrides "
                       "(e.g. data.corpus=/path optim.lr=1e-4 train.max_minutes=9). Checkpoints "
                       "go to --run-dir (default runs/<recipe>); --resume continues exactly from "
                       "the last one. Under torchrun (torchrun --nproc_per_node=N -m upband.cli "
                       "train ...) it trains with DDP.")
    p.add_argument("config", help="recipe TOML, or an existing run folder with --resume")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--run-dir", type=Path, metavar="DIR")
    p.add_argument("--resume", action="store_true",
                   help="continue from the run folder's last checkpoint (start fresh if none)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    p = sub.add_parser("plot", help="draw a run's training curves (Sulun Fig. 3) as a PNG",
                       description="Output SNR on the seen and unseen filters against iterations, "
                       "input SNR as dashed baselines, and the training loss.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("-o", "--output", type=Path, metavar="PNG")
    p.set_defaults(func=_plot)

    p = sub.add_parser("evaluate", help="run a paper's test protocol: tables and figures",
                       description="Degrade clean music the way a paper's test does, restore "
                       "it with models and baselines, and write report.md (the paper's table "
                       "with deltas against the input), results.csv, summary.json and PNG "
                       "figures into -o. A file that fails is reported and skipped; the exit "
                       "status is then 1.")
    p.add_argument("--data", required=True, type=Path, metavar="DIR",
                   help="folder of clean music (searched recursively), or a corpus folder "
                   "from 'upband corpus build' (its --split)")
    p.add_argument("--protocol", required=True, metavar="NAME",
                   help="sulun, kuleshov, tdpr, lattner-mp3 or versatile")
    p.add_argument("--models", default="", metavar="M1,M2,...",
                   help="pretrained names, .safetensors checkpoints or upband_unittest "
                   "(default: none, baselines only)")
    p.add_argument("--baselines", default="input,spline,sinc,sbr", metavar="B1,B2,...",
                   help="from input, spline, sinc, sbr, oracle (default: "
                   "input,spline,sinc,sbr; input is always included)")
    p.add_argument("--split", metavar="NAME", help="corpus split (default: test)")
    p.add_argument("-o", "--output", type=Path, metavar="REPORT_DIR",
                   help="report folder (default: upband-eval-<protocol>)")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="files in parallel processes (default 1; same numbers for any N)")
    p.add_argument("--limit-seconds", type=float, metavar="S",
                   help="evaluate only the first S seconds of each file")
    p.add_argument("-d", "--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the models run (default: CUDA when present)")
    p.add_argument("--no-visqol", action="store_true", help="skip ViSQOL even if installed")
    p.add_argument("--vggish", action="append", default=[], type=Path, metavar="WEIGHTS",
                   help="VGGish weights file(s): adds the VGG distance (repeatable)")
    p.add_argument("--best-of", type=int, default=1, metavar="N",
                   help="draws per file for stochastic models, best kept per metric "
                   "(Lattner & Nistal; default 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the per-file degradation draws (default 0)")
    p.add_argument("--no-merge", action="store_true",
                   help="score the models' raw output, as the papers do (default: the "
                   "do-no-harm merge of upband enhance)")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing report")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-file lines")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("models", help="list the model architectures and pretrained models",
                       description="One line per registered model: parameters, receptive "
                       "field, MACs per second of 44.1 kHz audio and a description.")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = get_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "train" and not any(a.startswith("-") for a in extra):
        # argparse ends a nargs="*" positional at the first option, so the KEY=VALUE pairs
        # after it (``upband train RUN --resume train.max_minutes=9``) come back unparsed
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = argv
    try:
        status: int = args.func(args)
        return status
    except UpbandError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        print("upband: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug: keep it to one line unless debugging
        if os.environ.get("UPBAND_DEBUG"):
            traceback.print_exc()
        return _fail(f"internal error: {type(err).__name__}: {err} (set UPBAND_DEBUG=1 for "
                     "the traceback and please report it)")


def _fail(message: str) -> int:
    print(f"upband: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------


def _enhance(args: argparse.Namespace) -> int:
    from upband import audio, inference

    for value, name in ((args.chunk_seconds, "--chunk-seconds"),
                        (args.overlap_seconds, "--overlap-seconds")):
        if not math.isfinite(value) or value < 0 or (name == "--chunk-seconds" and value <= 0):
            raise SpecError(f"{name} must be a positive number of seconds, got {value}")
    if args.batch_size is not None and args.batch_size < 1:
        raise SpecError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.bit_depth is not None:
        audio.normalize_subtype(args.bit_depth)
    if args.output is not None and len(args.inputs) > 1 and args.output.suffix.lower() in \
            audio.WRITE_FORMATS and not args.output.is_dir():
        raise SpecError(f"{len(args.inputs)} inputs need an output folder, not the file "
                        f"{args.output}")
    if "{stem}" not in args.filename:
        raise SpecError("--filename must contain {stem} (or every output would be the same)")
    pairs = inference.plan_outputs(args.inputs, args.output, recursive=args.recursive,
                                   template=args.filename, fmt=args.format)
    model = inference.load_enhancer(args.model, device=args.device)
    durations = _durations(pairs)
    bar = _progress(sum(durations.values()), "total", args.quiet, position=0)
    file_bar: list[Any] = []  # the current file's bar

    def on_start(src: Path) -> None:
        if bar is not None:
            file_bar[:] = [_progress(durations.get(src, 0.0), src.name, False, position=1,
                                     leave=False)]

    def advance(seconds: float) -> None:
        if bar is not None:
            bar.update(seconds)
            file_bar[0].update(seconds)

    def on_file(report: inference.FileReport) -> None:
        for b in file_bar:
            b.close()
        file_bar.clear()
        if report.status == "failed":
            print(f"upband: error: {report.message}", file=sys.stderr)
        elif not args.quiet:
            line = f"{report.status}: {report.input} -> {report.output}"
            if report.status in ("enhanced", "passthrough"):
                line += (f" ({report.duration_s:.1f} s in {report.seconds:.1f} s, "
                         f"real-time factor {report.real_time_factor:.3f})")
                if report.clip_gain != 1.0:
                    line += f"; scaled by {20 * math.log10(report.clip_gain):.2f} dB to avoid " \
                        "clipping"
            if args.verbose or report.status == "skipped":
                line += f"; {report.message}"
            bar.write(line) if bar is not None else print(line)

    reports = inference.run_batch(
        pairs, force=args.force, on_file=on_file, on_start=on_start, model=model,
        device=args.device,
        sample_rate=args.sample_rate, bit_depth=args.bit_depth, merge=not args.no_merge,
        chunk_seconds=args.chunk_seconds, overlap_seconds=args.overlap_seconds,
        batch_size=args.batch_size, clip_mode=args.clip_mode,
        progress=advance if bar is not None else None)
    if bar is not None:
        bar.close()
    if args.report is not None:
        inference.write_report(args.report, reports)
    counts = {s: sum(r.status == s for r in reports)
              for s in ("enhanced", "passthrough", "skipped", "failed")}
    if not args.quiet or counts["failed"]:
        print(f"upband: {len(reports)} file(s): {counts['enhanced']} enhanced, "
              f"{counts['passthrough']} already full band (copied), {counts['skipped']} "
              f"skipped (output exists), {counts['failed']} failed",
              file=sys.stderr if counts["failed"] else sys.stdout)
    return 1 if counts["failed"] else 0


def _evaluate(args: argparse.Namespace) -> int:
    import shlex

    from upband.evaluate import evaluate

    def on_file(result: Any, done: int, total: int) -> None:
        if result.error is not None:
            print(f"upband: error: {result.error} (skipped)", file=sys.stderr)
        elif not args.quiet:
            print(f"[{done}/{total}] {result.item.id}: {result.duration_s:.1f} s in "
                  f"{result.seconds:.1f} s", file=sys.stderr)

    command = "upband " + " ".join(shlex.quote(a) for a in args.argv)
    ev = evaluate(args.data, args.protocol, models=_names(args.models),
                  baselines=_names(args.baselines), output=args.output, split=args.split,
                  jobs=args.jobs, limit_seconds=args.limit_seconds, device=args.device,
                  visqol=not args.no_visqol, vggish=[str(v) for v in args.vggish],
                  seed=args.seed, best_of=args.best_of, merge=not args.no_merge,
                  force=args.force, command=command,
                  on_file=on_file)
    failed = len(ev.failed)
    print(f"upband: {len(ev.results) - failed} file(s) evaluated, {failed} failed; report in "
          f"{ev.output / 'report.md'}", file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _durations(pairs: list[tuple[Path, Path]]) -> dict[Path, float]:
    from upband import audio

    durations = {}
    for src, _ in pairs:
        with contextlib.suppress(UpbandError):  # a bad file is reported when its turn comes
            durations[src] = audio.info(src).duration
    return durations


def _progress(total: float, desc: str, quiet: bool, *, position: int = 0,
              leave: bool = True) -> Any:
    """A bar counted in seconds of audio on stderr (hidden when quiet or not a terminal)."""
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=round(total, 1), desc=desc, unit="s", position=position, leave=leave,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of audio "
                "[{elapsed}<{remaining}]", dynamic_ncols=True, file=sys.stderr, disable=None)


def _info(args: argparse.Namespace) -> int:
    from upband import audio
    from upband.degrade import detect_file

    records, failed = [], 0
    for path in args.files:
        try:
            i = audio.info(path)
            record: dict[str, Any] = {
                "path": str(path), "sample_rate": i.sample_rate, "channels": i.channels,
                "frames": i.frames, "duration_s": round(i.duration, 6), "format": i.format,
                "subtype": i.subtype}
            if not args.no_detect:
                found = detect_file(path)
                record["bandwidth"] = found.to_dict()
                record["summary"] = found.summary()
        except UpbandError as err:
            failed += 1
            print(f"upband: error: {err}", file=sys.stderr)
            continue
        records.append(record)
        if not args.json:
            line = (f"{path}: {i.sample_rate} Hz, {i.channels} ch, {_clock(i.duration)}, "
                    f"{i.format}/{i.subtype}")
            print(line + (f"; {record['summary']}" if "summary" in record else ""))
    if args.json:
        print(json.dumps(records, indent=2))
    return EXIT_USAGE if failed else 0


def _degrade(args: argparse.Namespace) -> int:
    from upband import audio, degrade

    if args.input.resolve() == args.output.resolve():
        raise SpecError("OUTPUT is INPUT; upband never overwrites its input")
    if args.filter is not None and args.cutoff is None:
        raise SpecError("--filter needs --cutoff HZ")
    if args.cutoff is not None and args.filter is None:
        raise SpecError("--cutoff goes with --filter")
    src = audio.info(args.input)
    subtype = audio.output_subtype(src, args.bit_depth)
    audio.output_format(args.output)  # fail on a bad extension before the work
    x, sr = audio.read(args.input)
    params: degrade.Params
    if args.preset is not None:
        import numpy as np

        params = degrade.sample(args.preset, np.random.default_rng(args.seed), sr=sr)
    elif args.filter is not None:
        params = degrade.Lowpass(args.cutoff, degrade.FilterSpec.parse(args.filter))
    elif args.mp3 is not None:
        params = degrade.Codec("mp3", bitrate_kbps=args.mp3)
    elif args.opus is not None:
        params = degrade.Codec("opus", bitrate_kbps=args.opus)
    else:
        params = degrade.Decimate(args.downsample, args.upsample)
    y = degrade.apply(x, sr, params)
    audio.write(args.output, y, sr, subtype=subtype, overwrite=args.force)
    if args.json:
        print(json.dumps({"input": str(args.input), "output": str(args.output),
                          "sample_rate": sr, "subtype": subtype,
                          "degradation": params.to_dict()}, indent=2))
    else:
        print(f"{args.output}: {params} ({sr} Hz, {subtype})")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from upband.degrade import describe_presets

    print(describe_presets())
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from upband import audio, metrics

    ref, sr = audio.read(args.reference)
    est, sr_est = audio.read(args.estimate)
    notes = []
    if sr_est != sr:
        est = audio.resample(est, sr_est, sr)
        notes.append(f"estimate resampled {sr_est} -> {sr} Hz")
    if est.shape[0] != ref.shape[0]:
        if 1 not in (est.shape[0], ref.shape[0]):
            raise SpecError(f"cannot compare {ref.shape[0]} reference channels with "
                            f"{est.shape[0]} estimate channels")
        est = audio.to_channels(est, ref.shape[0])
        ref = audio.to_channels(ref, est.shape[0])
        notes.append("mono compared with every channel")
    lag = 0
    if args.align:
        ref, est, lag = metrics.align(ref, est, sr)
        notes.append(f"estimate delayed by {lag} samples relative to the reference, removed")
    elif ref.shape[1] != est.shape[1]:
        notes.append(f"lengths differ ({ref.shape[1]} vs {est.shape[1]} samples), cropped")
        t = min(ref.shape[1], est.shape[1])
        ref, est = ref[:, :t], est[:, :t]
    if args.cutoff is not None and not 0 < args.cutoff < sr / 2:
        raise SpecError(f"--cutoff must lie between 0 and {sr / 2:g} Hz")
    values = metrics.compute_all(ref, est, sr, args.cutoff, with_visqol=not args.no_visqol)
    if args.json:
        print(json.dumps({"reference": str(args.reference), "estimate": str(args.estimate),
                          "sample_rate": sr, "frames": ref.shape[1], "lag": lag,
                          "notes": notes, "metrics": {k: _json_number(v)
                                                      for k, v in values.items()}}, indent=2))
        return 0
    for note in notes:
        print(f"note: {note}")
    print(f"{args.reference} vs {args.estimate}: {sr} Hz, {ref.shape[0]} ch, "
          f"{_clock(ref.shape[1] / sr)}")
    for key, value in values.items():
        print(f"  {key:<18} {_fmt_metric(key, value)}")
    return 0


def _corpus_build(args: argparse.Namespace) -> int:
    import warnings

    from upband.data import corpus

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        summary = corpus.build_corpus(
            args.sources, args.output, sample_rate=args.sample_rate, channels=args.channels,
            min_cutoff_hz=args.min_cutoff, splits=corpus.parse_splits(args.splits),
            split_lists=corpus.read_split_lists(args.split_list) if args.split_list else None,
            workers=args.workers, shard_seconds=args.shard_seconds, exclude=args.exclude,
            overwrite=args.force, progress=not args.quiet)
    for w in caught:
        print(f"upband: warning: {w.message}", file=sys.stderr)
    print(summary.format())
    return 0


def _corpus_pack(args: argparse.Namespace) -> int:
    from upband.data import corpus

    if args.corpus_command == "pack":
        summary = corpus.pack_corpus(args.corpus, args.output, codec=args.codec,
                                     max_mib=args.max_mib, overwrite=args.force,
                                     progress=not args.quiet)
    else:
        summary = corpus.unpack_corpus(args.corpus, args.output, overwrite=args.force,
                                       progress=not args.quiet)
    print(summary.format())
    return 0


def _corpus_info(args: argparse.Namespace) -> int:
    from upband.data.corpus import Corpus

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
    return EXIT_USAGE if bad else 0


def _train(args: argparse.Namespace) -> int:
    from upband.train import run_training, summarize

    result = run_training(args.config, args.overrides, run_dir=args.run_dir, resume=args.resume,
                          quiet=args.quiet)
    if result.rank == 0 and not args.quiet:
        print(summarize(result))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from upband.train import plot_run

    print(plot_run(args.run_dir, args.output))
    return 0


def _models(args: argparse.Namespace) -> int:
    from upband.models.registry import (
        describe_models,
        format_models_table,
        format_pretrained_table,
        pretrained_records,
    )

    infos = describe_models()
    if args.json:
        print(json.dumps({"architectures": [i.to_dict() for i in infos],
                          "pretrained": pretrained_records()}, indent=2))
    else:
        print(format_models_table(infos))
        print()
        print(format_pretrained_table())
    return 0


# --------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------

_UNITS: dict[str, Callable[[float], str]] = {
    "snr": lambda v: f"{v:8.3f} dB", "segmental_snr": lambda v: f"{v:8.3f} dB",
    "si_sdr": lambda v: f"{v:8.3f} dB", "snr_high": lambda v: f"{v:8.3f} dB",
    "lsd_db": lambda v: f"{v:8.3f} dB", "lsd_db_high": lambda v: f"{v:8.3f} dB",
    "visqol": lambda v: f"{v:8.3f} MOS-LQO",
}


def _fmt_metric(key: str, value: float) -> str:
    if math.isinf(value):
        return f"{'+inf' if value > 0 else '-inf':>8}" + (" dB" if "snr" in key else "")
    return _UNITS.get(key, lambda v: f"{v:8.4f}")(value)


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else
                                               "-inf" if value < 0 else "nan")


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60.0)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:06.3f}" if h else f"{m}:{s:06.3f}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
