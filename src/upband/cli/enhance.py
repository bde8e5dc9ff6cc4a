"""``upband enhance``: restore the high band of files (:func:`upband.enhancement.run_batch`)."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upband import audio
from upband.cli.base import DEVICES, EXIT_FAILED, EXIT_OK, add_no_fill, print_error
from upband.common.progress import audio_bar
from upband.enhancement import (
    CHUNK_SECONDS,
    CLIP_MODES,
    OUTPUT_TEMPLATE,
    OVERLAP_SECONDS,
    Settings,
)
from upband.enhancement.settings import AUTO_MODEL, LOSSY_PRETRAINED
from upband.errors import SpecError, UpbandError

if TYPE_CHECKING:
    from upband.enhancement import FileReport

DESCRIPTION = (
    "Restore the missing high frequencies of audio files. One input and -o FILE.wav|.flac writes "
    "that file; otherwise outputs go into the -o folder (default: next to each input), named by "
    "--filename and mirroring input folders. Existing outputs are kept unless --force, so a "
    "re-run finishes an interrupted batch. A file that fails is reported and skipped; the exit "
    "status is then 1.")

#: The statuses of :class:`FileReport`, in the order the closing line counts them.
STATUSES = ("enhanced", "passthrough", "skipped", "failed")


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband enhance``."""
    p.description = DESCRIPTION
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="files or folders")
    p.add_argument("-o", "--output", type=Path, metavar="OUTPUT",
                   help="output file (one input) or folder")
    p.add_argument("--model", metavar="NAME|PATH",
                   help="pretrained model name (see 'upband models') or a .safetensors "
                   f"checkpoint (default: the shipped default model); {AUTO_MODEL}: the MP3 "
                   "restorer (--lossy-model) for a file that looks like a lossy codec, the "
                   "default model for the others")
    p.add_argument("--lossy-model", metavar="NAME|PATH",
                   help=f"with --model {AUTO_MODEL}: the model for lossy-looking files "
                   f"(default: the shipped {LOSSY_PRETRAINED})")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="noise of a stochastic model (Lattner & Nistal's restorer): the same "
                   "seed gives the same output bit for bit, another seed another restoration "
                   "(default 0; deterministic models ignore it)")
    p.add_argument("--draws", type=int, default=1, metavar="K",
                   help="write K variations of every output (seeds N .. N+K-1, named "
                   "NAME.seed<N>...; a stochastic model only)")
    p.add_argument("--phase-repair", nargs="?", const="tdpr", metavar="VOCODER",
                   help="TD-PR: keep the model's magnitude above the cutoff with the phase of "
                   "a vocoder's re-synthesis (default vocoder: the shipped one; or a vocoder "
                   "name / .safetensors file, or griffin-lim)")
    p.add_argument("-d", "--device", default=DEVICES[0], choices=DEVICES,
                   help="where the model runs (default: CUDA when present)")
    p.add_argument("--sample-rate", type=int, metavar="HZ",
                   help="output rate (default: the input's from 44.1 kHz up, else 44.1/48 kHz)")
    p.add_argument("--bit-depth", metavar="16|24|32f", help="output sample format "
                   "(default: the input's; lossy inputs give 24-bit)")
    p.add_argument("--format", choices=[ext.lstrip(".") for ext in audio.WRITE_FORMATS],
                   help="output container for folder outputs (default: wav for wav inputs, "
                   "else flac)")
    p.add_argument("--filename", default=OUTPUT_TEMPLATE, metavar="TEMPLATE",
                   help=f"output name in folder mode, fields {{stem}} {{ext}} (default: "
                   f"{OUTPUT_TEMPLATE})")
    p.add_argument("-r", "--recursive", action="store_true", help="search folders recursively")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--chunk-seconds", type=float, default=CHUNK_SECONDS, metavar="S",
                   help=f"audio per model call (default {CHUNK_SECONDS:g}; memory grows with it)")
    p.add_argument("--overlap-seconds", type=float, default=OVERLAP_SECONDS, metavar="S",
                   help=f"cross-fade between chunks (default {OVERLAP_SECONDS:g})")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="chunks per model call (default: 1 on CPU, 8 on CUDA)")
    p.add_argument("--no-merge", action="store_true",
                   help="use the model's output for the whole band instead of keeping the "
                   "input's own content below its cutoff")
    p.add_argument("--no-guard", action="store_true",
                   help="do not bound the added band by the input's own level, frame by frame "
                   "(the guard keeps it from hissing on quiet music and in silences)")
    p.add_argument("--no-compensate", action="store_true",
                   help="do not undo a filter's roll-off above the cutoff where the input still "
                   "holds the band (by default the fitted filter is inverted there, within "
                   "the input's noise floor)")
    # the numbers are guard.py's FILL_DB, FILL_LOSSY_DB, FILL_BRICKWALL_DB, QUIET_FILL_DB and
    # FILL_MIN_CUTOFF_HZ (importing it here would load torch at every start of the command
    # line; a test compares them)
    add_no_fill(p, help="do not fill the band above the cutoff with soft noise where the "
                "model's band is fainter than 12 dB (3 after a lossy codec, 6 after another "
                "sharp cutoff; in quiet passages down to 6, or 3 after a sharp cutoff) under "
                "the level a "
                "small network predicts for it from the input, nor bring what is fainter than "
                "the input's own noise floor up to it (by default it does, from a cutoff of "
                "3 kHz up: brighter, at a small cost in SNR, more on music that had no band "
                "there)")
    p.add_argument("--enhance-gentle", action="store_true",
                   help="also enhance an input whose roll-off may be the music's own: as gentle "
                   "as music's, after a trend rising into it, or under 2 kHz (by default "
                   "taken for its timbre and passed through)")
    p.add_argument("--clip-mode", default=CLIP_MODES[0], choices=CLIP_MODES,
                   help="output above full scale: lower the gain only around the samples "
                   "above it (look-ahead limiter, default), scale the whole file down (a "
                   "second pass), clip, or leave (float outputs)")
    p.add_argument("--report", type=Path, metavar="FILE.json",
                   help="write what was detected and done per file as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file lines")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print each file's detected bandwidth")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Enhance every input; exit status 1 if a file failed."""
    # here, not at the top: enhancement loads torch, which `upband enhance --help` need not
    from upband.enhancement import (
        draw_outputs,
        is_stochastic,
        load_models,
        plan_outputs,
        run_batch,
        write_report,
    )

    _check_options(args)
    pairs = plan_outputs(args.inputs, args.output, recursive=args.recursive,
                         template=args.filename, fmt=args.format)
    phase = True if args.phase_repair == "tdpr" else args.phase_repair
    model = load_models(args.model, device=args.device, phase_repair=phase,
                        lossy_model=args.lossy_model)
    if args.draws > 1 and not is_stochastic(model):
        raise SpecError(f"--draws {args.draws}: the model is deterministic (no noise), every "
                        "draw would be the same")
    pairs, seeds = draw_outputs(pairs, args.filename, args.seed, args.draws)
    durations = _durations(pairs)
    bars = _Bars(durations, args)
    reports = run_batch(
        pairs, force=args.force, on_file=bars.on_file, on_start=bars.on_start, model=model,
        seeds=seeds,
        device=args.device, sample_rate=args.sample_rate, bit_depth=args.bit_depth,
        merge=not args.no_merge, chunk_seconds=args.chunk_seconds,
        overlap_seconds=args.overlap_seconds, batch_size=args.batch_size,
        clip_mode=args.clip_mode, guard=not args.no_guard,
        pass_gentle=not args.enhance_gentle, compensate=not args.no_compensate,
        fill=not args.no_fill, progress=None if args.quiet else bars.advance)
    bars.total.close()
    unwritten = False
    if args.report is not None:
        try:
            write_report(args.report, reports)
        except (OSError, UpbandError) as err:  # an unwritable output: exit 1, summary still
            print_error(f"{args.report}: cannot write the report "
                        f"({getattr(err, 'strerror', None) or err})")
            unwritten = True
    counts = {s: sum(r.status == s for r in reports) for s in STATUSES}
    if not args.quiet or counts["failed"]:
        print(f"upband: {len(reports)} file(s): {counts['enhanced']} enhanced, "
              f"{counts['passthrough']} passed through (not enhanced), {counts['skipped']} "
              f"skipped (output exists), {counts['failed']} failed",
              file=sys.stderr if counts["failed"] else sys.stdout)
    return EXIT_FAILED if counts["failed"] or unwritten else EXIT_OK


def _check_options(args: argparse.Namespace) -> None:
    """Refuse bad option values before any work (:class:`SpecError`, exit status 2)."""
    Settings(output_rate=args.sample_rate, chunk_seconds=args.chunk_seconds,
             overlap_seconds=args.overlap_seconds, batch_size=args.batch_size)
    if args.draws < 1:
        raise SpecError(f"--draws must be a positive integer, got {args.draws}")
    if args.lossy_model is not None and args.model != AUTO_MODEL:
        raise SpecError(f"--lossy-model goes with --model {AUTO_MODEL}")
    if args.bit_depth is not None:
        audio.normalize_subtype(args.bit_depth)


def _durations(pairs: list[tuple[Path, Path]]) -> dict[Path, float]:
    durations = {}
    for src, _ in pairs:
        with contextlib.suppress(UpbandError, OSError):  # a bad file: reported in its turn
            durations[src] = audio.info(src).duration
    return durations


class _Bars:
    """The total bar, the current file's bar and the per-file lines printed between them."""

    def __init__(self, durations: dict[Path, float], args: argparse.Namespace) -> None:
        self.durations, self.args = durations, args
        self.total = audio_bar(sum(durations.values()), "total", enabled=not args.quiet)
        self.file: Any = None

    def on_start(self, src: Path) -> None:
        if not self.args.quiet:
            self.file = audio_bar(self.durations.get(src, 0.0), src.name, position=1,
                                  leave=False)

    def advance(self, seconds: float) -> None:
        self.total.update(seconds)
        if self.file is not None:
            self.file.update(seconds)

    def on_file(self, report: FileReport) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if report.status == "failed":
            print_error(report.message)
        elif not self.args.quiet:
            self.total.write(_report_line(report, verbose=self.args.verbose))


def _report_line(report: FileReport, *, verbose: bool) -> str:
    line = f"{report.status}: {report.input} -> {report.output}"
    if report.status in ("enhanced", "passthrough"):
        line += (f" ({report.duration_s:.1f} s in {report.seconds:.1f} s, "
                 f"real-time factor {report.real_time_factor:.3f})")
        if report.clip_gain != 1.0:
            line += f"; scaled by {20 * math.log10(report.clip_gain):.2f} dB to avoid clipping"
        if report.limited_samples:
            overs = f"{report.limit_overs} over{'s' if report.limit_overs != 1 else ''}"
            line += (f"; limited {report.limited_samples} samples around {overs} "
                     f"(at most {report.limit_reduction_db:.2f} dB)")
        line += "".join(f"; warning: {w}" for w in report.warnings)
    if verbose or report.status == "skipped":
        line += f"; {report.message}"
        if verbose and report.compensation_gain_db is not None:
            lo, hi = report.compensation_band_hz or (0.0, 0.0)
            line += (f"; roll-off compensated by up to {report.compensation_gain_db:.1f} dB "
                     f"({lo / 1000:.1f}-{hi / 1000:.1f} kHz)")
        if verbose and report.guard_reduction_db is not None and report.guard_reduction_db < 0:
            line += (f"; guard lowered the added band by {-report.guard_reduction_db:.1f} dB "
                     f"({100 * (report.guard_limited_fraction or 0):.0f} % of frames)")
        if verbose and report.guard_fill_ratio:
            line += (f"; noise fill {10 * math.log10(report.guard_fill_ratio):+.1f} dB against "
                     f"the model's band, {report.guard_fill_db:g} dB under the predicted level")
    return line
