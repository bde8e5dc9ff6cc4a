"""Speed and memory of every registered model: real-time factor on CPU and CUDA, peak memory.

    python benchmarks/speed.py                        # all models, CPU (+ CUDA if present)
    python benchmarks/speed.py --models arunet-s arunet-xs --repeats 7 --json speed.json
    python benchmarks/speed.py --device cuda --seconds 30

Method. Each model runs in its own subprocess (so peak memory is its own): build, ``eval()``,
one warm-up pass, then ``--repeats`` timed passes under ``torch.inference_mode()`` on a
``[1, 2, seconds * 44100]`` tensor of noise (stereo; a mono model folds the two channels into the
batch). The real-time factor is the **median** pass time divided by the audio duration (the
minimum is reported too). CPU runs use ``--threads`` intra-op threads (default 2).

A model whose single pass would exceed ``--max-pass-seconds`` (estimated from a 1 s pass) is
timed on a shorter excerpt instead (at least 1 s; the convolutions cost the same per second of
audio at any length); the excerpt length is reported in the ``seconds`` column.

Memory. CPU: the process's resident-set high-water mark while the timed passes run (VmHWM from
``/proc/self/status``, reset through ``/proc/self/clear_refs`` after the model is built), minus
the resident set before them, i.e. the working memory of inference; the total peak is reported
as well. CUDA: ``torch.cuda.max_memory_allocated`` during the timed passes (weights included).
CUDA passes are timed with ``torch.cuda.synchronize`` around them, in fp32 and under
``torch.autocast(dtype=torch.bfloat16)``.

Timings on a shared machine are inflated by other processes: the 1-minute load average before
and after each model is recorded (it includes this benchmark's own threads and decays slowly,
so about ``--threads`` means an otherwise idle machine); compare runs taken at low load only.
With OpenMP's default (active) wait policy a 2-thread run on 2 busy cores spins at every barrier
and can be several times slower than one thread (measured: arunet-s 0.15 instead of 0.025);
``--omp-policy`` sets ``OMP_WAIT_POLICY`` for the workers: PASSIVE (the default, and what
``import upband`` sets unless the user chose otherwise: threads sleep instead of spinning, which
costs little on an idle machine and keeps a loaded one near single-thread speed) or ACTIVE
(OpenMP's spinning, to compare). The JSON records which policy was used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from upband.models import MODELS, build_model, describe_model

SAMPLE_RATE = 44_100


# --------------------------------------------------------------------------------------------
# worker (one model, one process)


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _time_passes(run: Any, repeats: int, sync: Any = None) -> list[float]:
    times = []
    for _ in range(repeats):
        if sync is not None:
            sync()
        start = time.perf_counter()
        run()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - start)
    return times


def _cpu_result(model: Any, seconds: float, repeats: int, max_pass: float) -> dict[str, Any]:
    probe = torch.randn(1, 2, SAMPLE_RATE) * 0.1
    with torch.inference_mode():
        model(probe)  # first-call overheads (allocator, oneDNN primitive creation)
        start = time.perf_counter()
        model(probe)
        per_second = time.perf_counter() - start
    used = seconds
    if per_second * seconds > max_pass:
        used = max(1.0, min(seconds, round(max_pass / max(per_second, 1e-9), 1)))
    x = torch.randn(1, 2, int(used * SAMPLE_RATE)) * 0.1
    with torch.inference_mode():
        model(x)  # warm-up at the timed length
        rss_before = _proc_status_kib("VmRSS")
        reset = _reset_peak_rss()
        times = _time_passes(lambda: model(x), repeats)
    peak = _proc_status_kib("VmHWM")
    result: dict[str, Any] = {
        "seconds": used,
        "rtf_median": statistics.median(times) / used,
        "rtf_min": min(times) / used,
        "times_s": times,
        "peak_rss_mb": peak / 1024 if peak is not None else None,
        "inference_rss_mb": (peak - rss_before) / 1024
        if (peak is not None and rss_before is not None and reset) else None,
    }
    return result


def _cuda_result(model: Any, seconds: float, repeats: int, bf16: bool) -> dict[str, Any]:
    device = torch.device("cuda")
    model = model.to(device)
    x = torch.randn(1, 2, int(seconds * SAMPLE_RATE), device=device) * 0.1

    def run() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    with torch.inference_mode():
        run()
        run()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times = _time_passes(run, repeats, sync=torch.cuda.synchronize)
    return {
        "seconds": seconds,
        "rtf_median": statistics.median(times) / seconds,
        "rtf_min": min(times) / seconds,
        "times_s": times,
        "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20,
    }


def worker(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    info = describe_model(args.worker)
    model = build_model(args.worker).eval()
    out: dict[str, Any] = {
        "model": args.worker,
        "parameters": info.parameters,
        "macs_per_second": info.macs_per_second,
        "channels": info.channels,
        "load_before": os.getloadavg()[0],
    }
    if args.device in ("cpu", "all"):
        out["cpu"] = _cpu_result(model, args.seconds, args.repeats, args.max_pass_seconds)
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        out["cuda_fp32"] = _cuda_result(model, args.seconds, args.repeats, bf16=False)
        out["cuda_bf16"] = _cuda_result(model, args.seconds, args.repeats, bf16=True)
    out["load_after"] = os.getloadavg()[0]
    return out


# --------------------------------------------------------------------------------------------
# driver


def _environment(args: argparse.Namespace) -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "load_average": os.getloadavg(),
        "omp_wait_policy": args.omp_policy,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return env


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(results: list[dict[str, Any]]) -> str:
    head = (f"{'model':<16} {'params':>11} {'GMAC/s':>8} {'sec':>5} {'CPU RTF':>8} {'min':>7} "
            f"{'RSS MB':>7} {'fp32 RTF':>9} {'bf16 RTF':>9} {'GPU MB':>7} {'load':>5}")
    lines = [head]
    for r in results:
        if "error" in r:
            lines.append(f"{r['model']:<16} error: {r['error']}")
            continue
        cpu, f32, b16 = r.get("cpu", {}), r.get("cuda_fp32", {}), r.get("cuda_bf16", {})
        gpu_mem = max(f32.get("peak_mem_mb", 0), b16.get("peak_mem_mb", 0)) or None
        lines.append(
            f"{r['model']:<16} {r['parameters']:>11,} {r['macs_per_second'] / 1e9:>8.2f} "
            f"{_fmt(cpu.get('seconds'), '5.1f')} {_fmt(cpu.get('rtf_median'), '8.4f')} "
            f"{_fmt(cpu.get('rtf_min'), '7.4f')} {_fmt(cpu.get('inference_rss_mb'), '7.0f')} "
            f"{_fmt(f32.get('rtf_median'), '9.5f')} {_fmt(b16.get('rtf_median'), '9.5f')} "
            f"{_fmt(gpu_mem, '7.0f')} {r['load_before']:>5.2f}")
    return "\n".join(lines)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="model names (default: all registered)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="audio duration per pass, 44.1 kHz stereo (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes (default 5)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "all"], default="auto",
                        help="auto = CPU, and CUDA too when a GPU is present")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--max-pass-seconds", type=float, default=60.0,
                        help="time a slow model on a shorter excerpt so one CPU pass stays "
                             "under this (default 60)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds allowed per model subprocess")
    parser.add_argument("--omp-policy", choices=("PASSIVE", "ACTIVE"), default="PASSIVE",
                        help="OMP_WAIT_POLICY of the workers (default PASSIVE, as upband sets)")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    if args.device == "auto":
        args.device = "all" if torch.cuda.is_available() else "cpu"
    names = args.models or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"speed.py: error: unknown model(s) {', '.join(unknown)}; "
              f"valid: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    environment = _environment(args)
    e = environment
    print(f"# {e['date']}  {e['cpu']} ({e['cpu_count']} CPUs), {args.threads} threads, "
          f"torch {e['torch']}, CUDA: {e['cuda']}, load {e['load_average'][0]:.2f}, "
          f"OMP_WAIT_POLICY={e['omp_wait_policy']}", flush=True)
    results = []
    for name in names:
        cmd = [sys.executable, __file__, "--worker", name, "--device", args.device,
               "--seconds", str(args.seconds), "--repeats", str(args.repeats),
               "--threads", str(args.threads), "--max-pass-seconds",
               str(args.max_pass_seconds)]
        env = {**os.environ, "OMP_WAIT_POLICY": args.omp_policy}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                  check=False, env=env)
            if proc.returncode:
                tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
                results.append({"model": name, "error": tail[0]})
            else:
                results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        except subprocess.TimeoutExpired:
            results.append({"model": name, "error": f"timed out after {args.timeout:.0f} s"})
        print(format_table(results[-1:]).splitlines()[-1], flush=True)
    print()
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"environment": environment, "results": results},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
