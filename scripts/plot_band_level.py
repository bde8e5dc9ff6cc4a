"""What a restored band brings in ViSQOL against what it costs in SNR, one point per system.

Reads the ``summary.json`` of ``upband evaluate`` reports and draws, for one condition, every
system's mean ΔViSQOL (y) over its mean ΔSNR (x), both against the input: the envelope
oracles at their levels as a line (the frontier a generated band can reach at best), the other
systems as labelled points. A later report's system of the same name is drawn with the label
given after the path (``REPORT=LABEL`` appends LABEL to its models' names).

    python scripts/plot_band_level.py --condition unseen -o FIG.png \
        docs/results/band-level/oracles-sulun-validation \
        docs/results/band-level/fill-sulun-validation=upband-default --fill
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from upband.evaluate.baselines import BASELINES

ORACLES = ["oracle-envelope", "oracle-envelope-6", "oracle-envelope-12", "oracle-envelope-18"]


def points(report: Path, condition: str, rename: str | None) -> dict[str, tuple[float, float]]:
    """``{system: (ΔSNR, ΔViSQOL)}`` of one report's condition; a model's name gets
    ``rename`` appended."""
    results = json.loads((report / "summary.json").read_text())["results"][condition]
    out = {}
    for name, metrics in results.items():
        if name in ("input", "oracle", "oracle-band") or "visqol" not in metrics:
            continue
        label = f"{name} {rename}" if rename and name not in BASELINES else name
        out[label] = (float(metrics["snr"]["delta"]), float(metrics["visqol"]["delta"]))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", help="report folders, each optionally =LABEL")
    p.add_argument("--condition", required=True)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    seen: dict[str, tuple[float, float]] = {}
    for spec in args.reports:
        path, _, label = spec.partition("=")
        seen.update(points(Path(path), args.condition, label or None))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    line = [seen[o] for o in ORACLES if o in seen]
    if line:
        ax.plot([x for x, _ in line], [y for _, y in line], "o-", color="0.6",
                label="clean envelope as noise (0 / -6 / -12 / -18 dB)")
    for name, (x, y) in seen.items():
        if name in ORACLES:
            ax.annotate(name.replace("oracle-envelope", "env") or "env", (x, y), fontsize=8,
                        xytext=(4, 4), textcoords="offset points", color="0.4")
            continue
        ax.plot(x, y, "s", ms=7)
        ax.annotate(name, (x, y), fontsize=9, xytext=(5, -10), textcoords="offset points")
    ax.axhline(0.2, color="tab:green", lw=0.8, ls="--", label="issue 13: ViSQOL +0.2")
    ax.axvline(0.0, color="k", lw=0.6)
    ax.set_xlabel("mean ΔSNR over the input (dB)")
    ax.set_ylabel("mean ΔViSQOL over the input")
    ax.set_title(f"What a band brings and costs ({args.condition})")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=120)
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
