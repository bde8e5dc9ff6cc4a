"""Training throughput of every recipe: iterations/s and seconds of audio per second.

Runs the real training loop (:func:`upband.train.loop.train`: data loading in the training
process, degradation, forward, loss, backward, optimiser step) on the synthetic source at each
recipe's sample rate, with validation off, and times the iterations after ``--warmup`` of them.
The median iteration time gives iterations/s; seconds of audio per second is
``batch x crop / sample_rate`` per iteration (a stereo second counts once).

    python benchmarks/train_throughput.py                      # every recipe, CPU
    python benchmarks/train_throughput.py arunet upband-default --steps 5 --warmup 2
    python benchmarks/train_throughput.py --device cuda --json out.json

Not part of the test suite. On a shared machine the numbers move with the load; the load
average is printed with them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from upband.models import describe_model
from upband.train.config import load_config
from upband.train.loop import StepInfo, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def measure(recipe: str, *, steps: int, warmup: int, device: str, workers: int,
            overrides: list[str]) -> dict[str, Any]:
    """Time ``steps`` iterations of ``recipe`` after ``warmup`` untimed ones."""
    total = warmup + steps
    config = load_config(CONFIGS / f"{recipe}.toml", [
        "data.corpus=synthetic", "data.synthetic={files=[2, 1, 0], seconds=6.0}",
        f"train.max_steps={total}", f"train.log_every={total}", "validation.every=0",
        "validation.at_start=false", f"checkpoint.every={total}", "runtime.progress=false",
        "runtime.tensorboard=false", f"runtime.device={device}", f"data.workers={workers}",
        *overrides])
    stamps: list[float] = []

    def tick(info: StepInfo) -> None:
        if info.loss.device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(config, Path(tmp) / "run", quiet=True, on_step=tick)
    marks = [start, *stamps]  # iteration k takes marks[k + 1] - marks[k]
    times = [b - a for a, b in itertools.pairwise(marks)][warmup:]
    step = statistics.median(times)
    audio = config.train.batch_size * config.data.crop_samples / config.data.sample_rate
    return {
        "recipe": recipe, "model": config.model.name,
        "parameters": describe_model(config.model.name, **config.model.kwargs).parameters,
        "batch": config.train.batch_size, "crop": config.data.crop_samples,
        "sample_rate": config.data.sample_rate, "channels": config.data.channels,
        "seconds_per_iteration": step, "iterations_per_second": 1.0 / step,
        "audio_seconds_per_second": audio / step, "timed_steps": len(times),
        "device": device,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="*", help="recipe names (default: all in configs/)")
    parser.add_argument("--steps", type=int, default=3, help="timed iterations (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto (default cpu)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for every recipe")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipes = args.recipes or sorted(p.stem for p in CONFIGS.glob("*.toml"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    header = (f"{'recipe':<20} {'model':<16} {'params':>11} {'batch x crop':>14} "
              f"{'s/it':>8} {'it/s':>8} {'audio s/s':>10}")
    print(header, flush=True)
    results = []
    for recipe in recipes:
        r = measure(recipe, steps=args.steps, warmup=args.warmup, device=args.device,
                    workers=args.workers, overrides=args.set)
        r["load_average"] = os.getloadavg()[0]
        results.append(r)
        print(f"{recipe:<20} {r['model']:<16} {r['parameters']:>11,} "
              f"{r['batch']:>4} x {r['crop']:<7} {r['seconds_per_iteration']:>8.3f} "
              f"{r['iterations_per_second']:>8.3f} {r['audio_seconds_per_second']:>10.3f}"
              f"   (load {r['load_average']:.1f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
