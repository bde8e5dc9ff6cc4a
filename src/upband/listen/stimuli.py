"""``upband evaluate --listening-test``: the listening-test file of an evaluation, with the
stimuli it needs.

An evaluation keeps numbers, not audio, so the stimuli are rendered again here, the way the
evaluation made what it scored: the same reference (:func:`upband.evaluate.runner.
load_reference`, the protocol's rate and channels, ``--limit-seconds``), the same seeded
degradation per file and condition, the same baselines and the same model pipeline (the
evaluation's own :func:`~upband.evaluate.runner.system_output`, first draw of a stochastic
model). Each version is processed whole, then cut, so an excerpt is exactly a stretch of what
was scored. Per chosen file and condition, one item:

* ``reference``: the clean reference (the MUSHRA open and hidden reference);
* ``anchor-3.5k``, ``anchor-7k``: BS.1534-3's low- and mid-range anchors, the reference
  low-passed at 3.5 and 7 kHz (zero-phase Butterworth order 12, so −6 dB at the cutoff and
  144 dB per octave above it; an anchor at or above 98 % of Nyquist is left out);
* ``input`` (the degraded signal, role ``degraded``), the other baselines and every model.

The excerpt is the loudest ``seconds`` of the reference (half-second steps; BS.1534-3 asks for
excerpts of about 10 s), with 20 ms raised-cosine fades at both ends. A version identical to an
earlier one of its item (``spline`` and ``sinc`` equal the input without decimation, ``oracle``
is the reference) is written once, under the earlier name. Levels stay as the systems made them
(as they were scored); only when an item would exceed full scale are all its versions lowered
by the same gain. The BS.1770-4 loudness of every stimulus goes into the file, and the tests
play each trial at the loudness of its quietest stimulus (``loudness_match``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from upband import audio
from upband.analysis import detect_bandwidth
from upband.common.jsonnum import dumps_strict, json_number
from upband.degrade import Decimate, FilterSpec, downsample, lowpass
from upband.degrade import apply as degrade_apply
from upband.errors import OutputExistsError, SpecError
from upband.evaluate import CSV_NAME, DEFAULT_BASELINES, JSON_NAME, REPORT_NAME
from upband.evaluate.baselines import BASELINES, Observation
from upband.evaluate.protocols import Condition, draw, seed_of
from upband.evaluate.runner import (
    Item as DataItem,
)
from upband.evaluate.runner import (
    State,
    find_items,
    load_reference,
    make_config,
    system_output,
)
from upband.fsutil import atomic_write_text
from upband.listen.loudness import integrated_loudness
from upband.listen.testfile import (
    DEFAULT_ITEMS,
    DEFAULT_SECONDS,
    FORMAT,
    FORMAT_VERSION,
    ListeningTest,
    load_test,
)

LISTENING_DIR = "listening"
TEST_NAME = "test.json"
#: BS.1534-3's anchors: name -> low-pass cutoff (Hz), and the filter.
ANCHORS = {"anchor-3.5k": 3500.0, "anchor-7k": 7000.0}
MID_ANCHOR = "anchor-7k"
ANCHOR_FILTER = FilterSpec("butter", 12)
#: An anchor is left out when its cutoff reaches this fraction of Nyquist.
ANCHOR_MAX_FRACTION = 0.98
FADE_S = 0.02
#: Largest sample of a written stimulus.
PEAK = 0.99
INSTRUCTIONS = {
    "mushra": "Compare each stimulus with the reference; one of them is the reference itself. "
              "Rate the quality of each from 0 to 100 (the hidden reference deserves 100).",
    "ab": "Listen to A and B and choose the one whose sound you prefer.",
    "mos": "Rate the overall audio quality of the excerpt.",
    "abx": "X is A or B. Listen to all three and say which one X is.",
}


def loudest_window(x: np.ndarray, sr: int, seconds: float) -> tuple[int, int]:
    """The loudest ``seconds`` of ``x`` ``[C, T]`` in half-second steps: (start, stop)."""
    n = min(x.shape[-1], max(1, round(seconds * sr)))
    step = max(1, sr // 2)
    energy = np.cumsum(np.concatenate([[0.0], (x.astype(np.float64) ** 2).sum(axis=0)]))
    starts = np.arange(0, x.shape[-1] - n + 1, step)
    best = int(starts[np.argmax(energy[starts + n] - energy[starts])])
    return best, best + n


def _fade(x: np.ndarray, sr: int) -> np.ndarray:
    n = min(int(FADE_S * sr), x.shape[-1] // 2)
    if n < 1:
        return x
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
    y = x.astype(np.float32, copy=True)
    y[:, :n] *= ramp
    y[:, -n:] *= ramp[::-1]
    return y


def _metrics(report: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``results.csv`` as (file, condition, system) -> {metric: value}."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    with open(report / CSV_NAME, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            value = float(row["value"])
            out.setdefault((row["file"], row["condition"], row["system"]), {})[
                row["metric"]] = json_number(value)
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "x"


def _versions(state: State, item: DataItem, cond: Condition, clean: np.ndarray
              ) -> list[tuple[str, str, str, np.ndarray]]:
    """(name, role, system label, signal) of every version of one file and condition."""
    cfg, sr = state.config, state.protocol.sample_rate
    params = draw(cond, item.id, cfg.seed, sr)
    degraded = degrade_apply(clean, sr, params)
    r = params.r if isinstance(params, Decimate) else None
    low = downsample(clean, r) if r is not None else None
    found = detect_bandwidth(degraded, sr) if cond.cutoff_hz is None or state.models else None
    cutoff = cond.cutoff_hz if cond.cutoff_hz is not None else found.cutoff_hz  # type: ignore[union-attr]
    obs = Observation(degraded, sr, params, cutoff, low, r, clean)
    out = [("reference", "reference", "", clean)]
    out += [(name, "anchor", "", lowpass(clean, sr, hz, ANCHOR_FILTER))
            for name, hz in ANCHORS.items() if hz < ANCHOR_MAX_FRACTION * sr / 2]
    for system in cfg.baselines:
        est = np.asarray(BASELINES[system](obs), np.float32)
        out.append((_safe(system), "degraded" if system == "input" else "system", system, est))
    for label in state.models:
        assert found is not None
        seed = seed_of(cfg.seed, item.id, cond.name, label, 0) % (2**63)
        out.append((_safe(label), "system", label,
                    system_output(state, label, degraded, seed, found, clean)))
    return out


def _render_item(state: State, index: int, item: DataItem, cond: Condition, clean: np.ndarray,
                 window: tuple[int, int], folder: Path, metrics: dict[Any, Any],
                 notes: list[str]) -> dict[str, Any]:
    """Write one item's stimuli into ``folder / stimuli / <id>``; its entry of the file."""
    sr = state.protocol.sample_rate
    item_id = _safe(f"{index + 1:03d}-{cond.name}")
    kept: list[tuple[str, str, str, np.ndarray]] = []
    for name, role, label, signal in _versions(state, item, cond, clean):
        cut = _fade(np.asarray(signal[:, window[0]:window[1]], np.float32), sr)
        same = next((k for k in kept if np.array_equal(k[3], cut)), None)
        if same is not None:
            notes.append(f"{item_id}: {name} is identical to {same[0]} (written once)")
        elif name not in [k[0] for k in kept]:
            kept.append((name, role, label, cut))
    peak = max(float(np.max(np.abs(k[3]))) for k in kept)
    gain = PEAK / peak if peak > PEAK else 1.0
    if gain < 1.0:
        notes.append(f"{item_id}: every version lowered by {20 * math.log10(gain):.2f} dB "
                     "(a version exceeded full scale)")
    versions = []
    for name, role, label, x in kept:
        x = x * np.float32(gain)
        rel = Path("stimuli", item_id, f"{name}.flac")
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        audio.write(folder / rel, x, sr, subtype="PCM_24", overwrite=True)
        versions.append({
            "name": name, "role": role, "path": rel.as_posix(),
            "loudness_lufs": json_number(integrated_loudness(x, sr)),
            "cutoff_hz": float(detect_bandwidth(x, sr).cutoff_hz),
            "metrics": metrics.get((item.id, cond.name, label), {}) if label else {}})
    start, stop = window[0] / sr, window[1] / sr
    return {"id": item_id, "title": f"{item.id}, {start:.1f}–{stop:.1f} s",
            "condition": cond.label or cond.name, "file": item.id, "start_s": start,
            "gain_db": 20 * math.log10(gain), "versions": versions}


def _tests(designs: Sequence[str], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tests of the file: one per design, over every item."""
    common = [v["name"] for v in items[0]["versions"]
              if all(v["name"] in [w["name"] for w in it["versions"]] for it in items)]
    roles = {v["name"]: v["role"] for it in items for v in it["versions"]}
    systems = [n for n in common if roles[n] == "system"]
    models = [n for n in systems if n not in {_safe(b) for b in BASELINES}]
    pairs = [[m, "input"] for m in (models or systems)] if "input" in common else []
    out = []
    for design in designs:
        test: dict[str, Any] = {"name": design, "design": design,
                                "instructions": INSTRUCTIONS[design], "loudness_match": True}
        if design == "mushra":
            test.update(versions=common, reference="reference")
            if MID_ANCHOR in common:
                test["mid_anchor"] = MID_ANCHOR
        elif design == "mos":
            test["versions"] = [n for n in common if roles[n] != "anchor"]
        else:
            if not pairs:
                raise SpecError(f"a {design} test needs a system besides the input: add "
                                "--models or a baseline")
            test.update(pairs=pairs, repeats=1 if design == "ab" else 2)
        out.append(test)
    return out


def _chosen(report: Path, count: int) -> list[str]:
    """``count`` file ids of the evaluation, spread evenly over its file list."""
    try:
        summary = json.loads((report / JSON_NAME).read_text(encoding="utf-8"))
        files = [f["file"] for f in summary["files"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SpecError(f"{report}: no evaluation report to make a listening test of "
                        f"({err})") from None
    idx = np.unique(np.linspace(0, len(files) - 1, min(count, len(files))).round().astype(int))
    return [files[int(i)] for i in idx]


def write_listening_test(
        report: str | os.PathLike[str], *, data: str | os.PathLike[str], protocol: str,
        models: Sequence[str] = (), baselines: Sequence[str] = DEFAULT_BASELINES,
        split: str | None = None, limit_seconds: float | None = None, device: str = "auto",
        seed: int = 0, merge: bool = True, guard: bool = True, vocoder: str | None = None,
        compensate: bool = True, fill: bool = True,
        designs: Sequence[str] = ("mushra",), items: int = DEFAULT_ITEMS,
        seconds: float = DEFAULT_SECONDS, force: bool = False) -> ListeningTest:
    """Render the stimuli of the evaluation in ``report`` (the arguments are the evaluation's
    own) and write ``report/listening/test.json``; returns the loaded test.

    ``items`` files (spread over the evaluated ones) x every condition make the items.
    """
    report = Path(report)
    if isinstance(items, bool) or items < 1:
        raise SpecError(f"--listening-items must be a positive integer, got {items!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise SpecError(f"--listening-seconds must be a positive number, got {seconds:g}")
    folder = report / LISTENING_DIR
    if (folder / TEST_NAME).exists() and not force:
        raise OutputExistsError(f"{folder / TEST_NAME}: already exists (use --force)")
    chosen = _chosen(report, items)
    metrics = _metrics(report)
    dataset = find_items(data, split)
    by_id = {it.id: it for it in dataset.items}
    config = make_config(protocol, models=models, baselines=baselines, device=device,
                         limit_seconds=limit_seconds, visqol=False, seed=seed,
                         corpus=dataset.corpus, merge=merge, guard=guard, vocoder=vocoder,
                         compensate=compensate, fill=fill)
    state = State(config)
    sr = state.protocol.sample_rate
    entries: list[dict[str, Any]] = []
    notes: list[str] = []
    for k, file_id in enumerate(chosen):
        clean, _ = load_reference(state, by_id[file_id])
        window = loudest_window(clean, sr, seconds)
        entries += [_render_item(state, k, by_id[file_id], cond, clean, window, folder,
                                 metrics, notes) for cond in state.protocol.conditions]
    doc = {"format": FORMAT, "version": FORMAT_VERSION,
           "title": f"upband evaluate {protocol}: listening test",
           "sample_rate": sr,
           "source": {"report": f"../{REPORT_NAME}", "summary": f"../{JSON_NAME}",
                      "protocol": protocol, "data": str(data),
                      "seed": seed, "limit_seconds": limit_seconds, "merge": merge,
                      "guard": guard, "compensate": compensate, "fill": fill,
                      "seconds": seconds},
           "notes": [f"excerpts: the loudest {seconds:g} s of each reference, 20 ms fades",
                     "loudness: BS.1770-4 per stimulus; tests play each trial at its quietest "
                     "stimulus's loudness", *notes],
           "items": entries, "tests": _tests(designs, entries)}
    atomic_write_text(folder / TEST_NAME, dumps_strict(doc) + "\n")
    return load_test(folder / TEST_NAME)
