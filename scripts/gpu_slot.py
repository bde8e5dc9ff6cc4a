#!/usr/bin/env python3
"""Continue a CPU training run for one slot on a lent GPU machine, and bring the checkpoint back.

The GPU machine reaches no network and takes at most 64 MiB of files along, so this packs what
one slot needs into ``.gpu/`` (git ignores it through ``.git/info/exclude``):

* ``wheels/``: the dependencies of upband that the GPU image lacks (soundfile, soxr, lameenc,
  pydantic and its parts), for its Python 3.12 on x86-64, from PyPI;
* ``audio/``: the run's training audio as the *original* files of the corpus' train split (Ogg,
  Opus and FLAC, compressed, about a minute of music per MiB), a different random share of them
  each slot (``--seed``), re-built into a corpus there;
* ``run/``: the run's ``config.json`` and its latest checkpoint.

Here, before the slot::

    python scripts/gpu_slot.py prepare --run RUN_DIR --corpus CORPUS --seed 3

prints the device command: carry ``.gpu``, ``timeout_s`` 600. It builds the corpus there
(``--splits 1,0,0``: every carried file trains), resumes the run with ``data.corpus`` pointing
at it for ``train.max_minutes`` (7: the command's 10 minutes hold the start, the build and the
copy back), and ``export`` copies the new checkpoint's files into ``$OUT``. Then, here::

    python scripts/gpu_slot.py collect FILES_AT --run RUN_DIR

puts them into ``RUN_DIR/checkpoints/step-N`` and the CPU run resumes from there with
``upband train RUN_DIR --resume`` (the corpus path is one of the keys a resume may change).
A checkpoint's files must each be at most 16 MiB to come back: true for stft-restore (1.7 M
parameters; weights and Adam moments 21 MB in all, the largest file 14 MB), not for arunet-s
(the Adam moments alone are 28 MB), which would need its optimiser state split first. Checked
on this CPU machine, standing in for the GPU one (2026-12-05): ``prepare`` of a stft-restore
run packed 26 training files (16 MiB of audio), its 20 MiB checkpoint and 4.4 MiB of wheels;
the corpus build, a resumed step, ``export`` and ``collect`` ran, and the CPU run resumed from
the collected checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from upband.train.checkpoint import find_latest

HERE = Path(__file__).resolve().parent.parent
SLOT = HERE / ".gpu"
#: What the GPU image lacks of upband's dependencies (it has numpy, scipy, torch, safetensors,
#: tqdm, matplotlib and tensorboard).
WHEELS = ("soundfile", "soxr", "lameenc", "pydantic", "pydantic-core", "annotated-types",
          "typing-inspection", "typing-extensions")
#: The checkpoint files that come back ($OUT keeps at most 8 files of 16 MiB each).
MAX_FILE = 16 * 2**20
DEVICE_COMMAND = (
    "pip install -q --no-index --no-deps .gpu/wheels/*.whl && export PYTHONPATH=src && "
    "python3 -m upband.cli corpus build .gpu/audio -o /tmp/corpus --splits 1,0,0 -j 16 -q; "
    "cp -r .gpu/run /tmp/run && python3 -m upband.cli train /tmp/run --resume "
    "data.corpus=/tmp/corpus train.max_minutes={minutes} validation.every=0 "
    "validation.at_start=false -q; "
    "python3 scripts/gpu_slot.py export /tmp/run \"$OUT\""
)


def latest_checkpoint(run: Path) -> Path:
    """The run's latest complete checkpoint (:func:`upband.train.checkpoint.find_latest`)."""
    found = find_latest(run)
    if found is None:
        raise SystemExit(f"gpu_slot: error: {run} holds no checkpoint")
    return found


def prepare(run: Path, corpus: Path, mib: float, seed: int, minutes: float) -> int:
    checkpoint = latest_checkpoint(run)
    if SLOT.exists():
        shutil.rmtree(SLOT)
    exclude = HERE / ".git" / "info" / "exclude"
    known = exclude.read_text(encoding="utf-8") if exclude.is_file() else ""
    if exclude.parent.is_dir() and "/.gpu/" not in known:
        with exclude.open("a", encoding="utf-8") as f:
            f.write("/.gpu/\n")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.12", "--platform",
                    "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
                    "-d", str(SLOT / "wheels"), *WHEELS], check=True)
    records = [json.loads(line) for line in (corpus / "index.jsonl").open(encoding="utf-8")]
    train = [r for r in records if r["split"] == "train" and not r.get("skipped")]
    random.Random(seed).shuffle(train)
    used, budget = sum(p.stat().st_size for p in (SLOT / "wheels").iterdir()), mib * 2**20
    for part in checkpoint.iterdir():
        used += part.stat().st_size
    taken = 0
    for record in train:
        source = Path(record["path"])
        size = source.stat().st_size if source.is_file() else None
        if size is None or used + size > budget:
            continue
        dest = SLOT / "audio" / record["source"] / record["relpath"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
        used, taken = used + size, taken + 1
    (SLOT / "run").mkdir(parents=True)
    shutil.copy2(run / "config.json", SLOT / "run" / "config.json")
    shutil.copytree(checkpoint, SLOT / "run" / "checkpoints" / checkpoint.name)
    print(f"{SLOT}: {taken} of {len(train)} training files, checkpoint {checkpoint.name}, "
          f"{used / 2**20:.1f} MiB in all")
    print("device command (carry [\".gpu\"], timeout_s 600):")
    print(DEVICE_COMMAND.format(minutes=minutes))
    return 0


def export(run: Path, out: Path) -> int:
    checkpoint = latest_checkpoint(run)
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in checkpoint.iterdir() if p.is_file())
    too_big = [p.name for p in files if p.stat().st_size > MAX_FILE]
    if too_big or len(files) > 7:
        print(f"gpu_slot: error: {checkpoint} cannot come back ({len(files)} files; over 16 MiB: "
              f"{', '.join(too_big) or 'none'})", file=sys.stderr)
        return 1
    for p in files:
        shutil.copy2(p, out / p.name)
    (out / "CHECKPOINT").write_text(checkpoint.name + "\n", encoding="utf-8")
    print(f"exported {checkpoint.name}: {', '.join(p.name for p in files)}")
    return 0


def collect(files_at: Path, run: Path) -> int:
    name = (files_at / "CHECKPOINT").read_text(encoding="utf-8").strip()
    if not name.startswith("step-") or "/" in name:
        print(f"gpu_slot: error: {files_at} holds no exported checkpoint", file=sys.stderr)
        return 1
    dest = run / "checkpoints" / name
    if dest.exists():
        print(f"gpu_slot: error: {dest} exists already", file=sys.stderr)
        return 1
    # ".tmp-": the prefix the trainer clears when a write was killed (checkpoint.remove_stale)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-gpu-", dir=run / "checkpoints"))
    for p in files_at.iterdir():
        if p.name != "CHECKPOINT":
            shutil.copy2(p, tmp / p.name)
    os.replace(tmp, dest)
    print(f"{dest}: continue with upband train {run} --resume")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    a = sub.add_parser("prepare", help="pack .gpu/ for one slot (here)")
    a.add_argument("--run", type=Path, required=True)
    a.add_argument("--corpus", type=Path, required=True)
    a.add_argument("--mib", type=float, default=32.0,
                   help="everything in .gpu/ (default 32: the repository's own files, 31 MB "
                        "with two shipped models, travel too, and a call carries at most "
                        "64 MiB)")
    a.add_argument("--seed", type=int, default=0, help="which share of the audio")
    a.add_argument("--minutes", type=float, default=7.0, help="training minutes there")
    e = sub.add_parser("export", help="copy the latest checkpoint into $OUT (there)")
    e.add_argument("run", type=Path)
    e.add_argument("out", type=Path)
    c = sub.add_parser("collect", help="put the returned checkpoint into the run (here)")
    c.add_argument("files_at", type=Path)
    c.add_argument("--run", type=Path, required=True)
    args = p.parse_args(argv)
    if args.action == "prepare":
        return prepare(args.run, args.corpus, args.mib, args.seed, args.minutes)
    if args.action == "export":
        return export(args.run, args.out)
    return collect(args.files_at, args.run)


if __name__ == "__main__":
    sys.exit(main())
