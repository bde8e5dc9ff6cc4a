"""End-to-end CPU speed of ``upband enhance``: decode -> detect -> model -> merge -> write.

Enhances 60 s of 44.1 kHz stereo 16-bit FLAC (synthetic music low-passed at 11 025 Hz, so the
model really runs) with the default model, after one warm-up run, and prints the real-time factor
(processing time / audio time) of every run and their median. The model is loaded once (its
load time is reported separately); a separate run of the ``upband`` command adds interpreter
start-up and model loading, also reported. Target: median <= 0.05 on a 2-core laptop CPU;
with ``--phase-repair`` (TD-PR with the shipped vocoder, or a vocoder file) <= 0.06.

    python benchmarks/enhance.py [--model NAME|PATH] [--phase-repair [VOCODER]] [--seconds 60]
                                 [--repeats 5] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# upband first: it sets the OpenMP wait policy that torch reads when it is imported
import upband  # noqa: F401  # isort: skip
import torch

sys.path.insert(0, str(Path(__file__).parent))

from _audio import write_music
from upband.enhancement import enhance_file, load_enhancer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or checkpoint (default: the default model)")
    parser.add_argument("--phase-repair", nargs="?", const="tdpr", metavar="VOCODER",
                        help="TD-PR phase repair (default vocoder: the shipped one)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "upband-bench")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    src = write_music(args.workdir / f"music-{args.seconds:g}s.flac", args.seconds)
    t0 = time.perf_counter()
    phase = True if args.phase_repair == "tdpr" else args.phase_repair
    model = load_enhancer(args.model, device="cpu", phase_repair=phase)
    load_s = time.perf_counter() - t0
    dst = args.workdir / "enhanced.flac"
    rtfs = []
    for i in range(args.repeats + 1):
        report = enhance_file(src, dst, model, device="cpu", overwrite=True)
        if i:  # the first run warms up
            rtfs.append(report.seconds / report.duration_s)
        print(f"run {i}{' (warm-up)' if not i else ''}: {report.seconds:.2f} s for "
              f"{report.duration_s:.0f} s of audio, RTF {report.seconds / report.duration_s:.4f}"
              f" ({report.status}, merge at {report.merge_cutoff_hz or 0:.0f} Hz)", flush=True)
    cmd = [sys.executable, "-m", "upband.cli", "enhance", str(src), "-o", str(dst), "-f", "-q",
           "-d", "cpu"] + (["--model", args.model] if args.model else []) + \
        (["--phase-repair", args.phase_repair] if args.phase_repair else [])
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    command_s = time.perf_counter() - t0
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": platform.processor() or
        platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(), "model": model.name,
        "phase_repair": args.phase_repair, "audio_seconds": args.seconds,
        "rtf_runs": rtfs, "rtf_median": statistics.median(rtfs), "rtf_min": min(rtfs),
        "model_load_s": load_s, "command_wall_s": command_s,
        "command_rtf": command_s / args.seconds}
    print(f"\nmedian real-time factor {result['rtf_median']:.4f} (min {result['rtf_min']:.4f}) "
          f"over {len(rtfs)} runs of {args.seconds:g} s of 44.1 kHz stereo; model load "
          f"{load_s:.2f} s; the 'upband enhance' command end to end {command_s:.1f} s "
          f"(RTF {result['command_rtf']:.4f}); load average {result['load_average'][0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
