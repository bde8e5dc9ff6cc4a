"""Peak memory of ``upband enhance`` on a 60-minute 44.1 kHz stereo file.

Writes an hour of synthetic 16-bit stereo music (low-passed at 11 025 Hz, so the model runs on
all of it) block by block, runs the ``upband enhance`` command on it in a child process, and
reports the child's peak resident memory (``ru_maxrss``) and whether the output has exactly the
input's length. Target: peak RSS <= 1.5 GB.

    python benchmarks/memory.py [--minutes 60] [--model NAME|PATH] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _audio import write_music
from upband import audio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--model", help="model name or checkpoint (default: the default model)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "upband-bench")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    src = write_music(args.workdir / f"music-{args.minutes:g}min.flac", args.minutes * 60)
    print(f"input: {src} ({audio.info(src).duration / 60:.1f} min, made in "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)
    dst = args.workdir / f"music-{args.minutes:g}min.upband.flac"
    cmd = [sys.executable, "-m", "upband.cli", "enhance", str(src), "-o", str(dst), "-f", "-q",
           "-d", "cpu"] + (["--model", args.model] if args.model else [])
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    src_frames, dst_frames = audio.info(src).frames, audio.info(dst).frames
    result = {"minutes": args.minutes, "peak_rss_mb": round(peak_mb, 1), "wall_s": round(wall, 1),
              "rtf": round(wall / (args.minutes * 60), 4), "input_frames": src_frames,
              "output_frames": dst_frames, "exact_length": src_frames == dst_frames,
              "model": args.model or "default"}
    print(f"peak RSS {peak_mb:.0f} MB (target <= 1536 MB: {'ok' if peak_mb <= 1536 else 'OVER'}); "
          f"{wall:.0f} s wall (RTF {result['rtf']}); output {dst_frames} frames, input "
          f"{src_frames}: {'exact' if result['exact_length'] else 'LENGTH MISMATCH'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if peak_mb <= 1536 and result["exact_length"] else 1


if __name__ == "__main__":
    sys.exit(main())
