"""Train the band-level predictor (``src/upband/enhancement/bandlevel.py``) on a corpus.

Two steps, so that the slow one runs once:

    # degraded crops of a split -> per-frame band levels (input under the cutoff, clean above)
    python scripts/train_band_level.py extract --corpus CORPUS --examples 5000 -o train.npz
    python scripts/train_band_level.py extract --corpus CORPUS --split validation \
        --examples 1500 --seed 11 -o val.npz
    # fit the network; prints its validation error after every epoch (--more adds training
    # files, e.g. one extracted with --seed 21)
    python scripts/train_band_level.py fit train.npz val.npz -o upband-band-level.safetensors
    # errors by range of cutoffs, of this file and the shipped ones
    python scripts/train_band_level.py score val.npz upband-band-level.safetensors shipped \
        shipped-low

``extract`` draws crops as training does (``CropDataset``: the ``versatile`` preset, each crop
told its cutoff with the training jitter) and keeps those whose cutoff lies in
``[--min-cutoff, 0.95 Nyquist]``; the STFT is the level guard's, the channels' power summed.
The ``.npz`` holds arrays only (no pickles): ``ref`` ``[T]``, ``below`` ``[T, 12]``, ``above``
``[T, 8]`` (the clean band, NaN where a band is past Nyquist), ``residual`` ``[T, 3]`` (the
input's first bands above the cutoff, -inf past Nyquist), ``cutoff`` and ``frames`` per crop.
"""

# ruff: noqa: I001  (upband first: it sets OMP_WAIT_POLICY before torch starts its threads)
from __future__ import annotations

import argparse
import itertools
import json
import sys
from multiprocessing import Pool
from typing import Any

from upband.data.corpus import Corpus
from upband.data.dataset import AudioSource, CropDataset
from upband.data.synthetic import synthetic_source
from upband.enhancement import bandlevel as bl
from upband.enhancement.guard import SILENT_DB, fft_size

import numpy as np
import torch
from safetensors.torch import save_file

_DS: CropDataset | None = None


def _power(x: np.ndarray, n: int) -> np.ndarray:
    """The guard's STFT power, channels summed, white noise of unit variance = 1 per bin."""
    w = np.hanning(n + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(x, n, axis=1)[:, ::n // 4]
    return (np.abs(np.fft.rfft(frames * w, axis=-1)) ** 2).sum(axis=0) / np.sum(w ** 2)


def _one(index: int) -> dict[str, Any] | None:
    assert _DS is not None
    item = _DS[index]
    sr, fc = _DS.sample_rate, float(item["cutoff_hz"])
    if not _MIN_CUTOFF <= fc <= 0.95 * sr / 2:
        return None
    n = fft_size(sr)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    px = _power(item["input"].numpy().astype(np.float64), n)
    pc = _power(item["target"].numpy().astype(np.float64), n)
    above = np.full((len(px), bl.ABOVE), np.nan)
    edges = bl.above_edges(fc, sr / 2)
    above[:, :len(edges)] = bl.band_levels(pc, freqs, edges)
    return {"ref": bl.reference_level(px, freqs, fc), "cutoff": fc, "above": above,
            "below": bl.band_levels(px, freqs, bl.below_edges(fc)),
            "residual": bl.residual_levels(px, freqs, fc, sr / 2)}


_MIN_CUTOFF = 3000.0


def _source(corpus: str) -> AudioSource:
    """A corpus folder, or ``synthetic`` (the test music of ``upband.data.synthetic``)."""
    return synthetic_source(seconds=8.0) if corpus == "synthetic" else Corpus.open(corpus)


def _init(corpus: str, split: str, seed: int, preset: str, min_cutoff: float,
          seconds: float) -> None:
    global _DS, _MIN_CUTOFF
    torch.set_num_threads(1)
    _MIN_CUTOFF = min_cutoff
    source = _source(corpus)
    _DS = CropDataset(source, split, crop_samples=int(seconds * source.sample_rate),
                      preset=preset, seed=seed, cutoffs=True, length=10 ** 7)


def extract(args: argparse.Namespace) -> None:
    init = (args.corpus, args.split, args.seed, args.preset, args.min_cutoff, args.seconds)
    with Pool(args.jobs, _init, init) as pool:
        items = [r for r in pool.imap(_one, range(args.examples), chunksize=8) if r is not None]
    np.savez(args.output, ref=np.concatenate([r["ref"] for r in items]),
             below=np.concatenate([r["below"] for r in items]),
             above=np.concatenate([r["above"] for r in items]),
             residual=np.concatenate([r["residual"] for r in items]),
             cutoff=np.array([r["cutoff"] for r in items]),
             frames=np.array([len(r["ref"]) for r in items]),
             sample_rate=_source(args.corpus).sample_rate)
    print(f"{args.output}: {len(items)} crops, {sum(len(r['ref']) for r in items)} frames")


def crops(path: str) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Per crop: its cutoff, inputs and targets (dB relative to the reference; NaN past
    Nyquist), non-silent frames only."""
    with np.load(path) as stored:  # every array read once (an npz reads on each access)
        data = {key: stored[key] for key in stored.files}
    sr = int(data["sample_rate"])
    alpha = (fft_size(sr) // 4) / (bl.TAU_S * sr)
    out = []
    at = 0
    for fc, k in zip(data["cutoff"], data["frames"], strict=True):
        ref, below = data["ref"][at:at + k], data["below"][at:at + k]
        residual = data["residual"][at:at + k]
        feats = bl.features(ref[None], below[None], residual[None], float(fc), alpha,
                            bl.FeatureState())[0]
        target = np.maximum(data["above"][at:at + k] - ref[:, None], bl.TARGET_FLOOR_DB)
        loud = ref > SILENT_DB
        out.append((float(fc), feats[loud], target[loud]))
        at += k
    return out


def table(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, targets (dB relative to the reference) and their mask, non-silent frames only."""
    parts = crops(path)
    x = np.concatenate([feats for _, feats, _ in parts])
    y = np.concatenate([target for _, _, target in parts])
    return x.astype(np.float32), np.nan_to_num(y).astype(np.float32), ~np.isnan(y)


def errors(pred: np.ndarray, y: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    err = (pred - y)[mask]
    return {"mae_db": float(np.abs(err).mean()), "bias_db": float(err.mean()),
            "over": float(np.mean(err > 0)), "over_6db": float(np.mean(err > 6)),
            "over_12db": float(np.mean(err > 12))}


def fit(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    parts = [table(path) for path in [args.train, *args.more]]
    x, y, m = (np.concatenate([part[i] for part in parts]) for i in range(3))
    xv, yv, mv = table(args.val)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    h = args.hidden
    net = torch.nn.Sequential(torch.nn.Linear(bl.N_FEATURES, h), torch.nn.ReLU(),
                              torch.nn.Linear(h, h), torch.nn.ReLU(), torch.nn.Linear(h, bl.ABOVE))
    opt = torch.optim.Adam(net.parameters(), args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    tx, ty, tm = torch.from_numpy((x - mean) / scale), torch.from_numpy(y), torch.from_numpy(m)
    vx = torch.from_numpy((xv - mean) / scale)
    print(f"{len(x)} training frames, {len(xv)} validation frames")
    history = []
    for epoch in range(args.epochs):
        order = torch.randperm(len(tx))
        for i in range(0, len(order), args.batch):
            j = order[i:i + args.batch]
            err = ty[j][tm[j]] - net(tx[j])[tm[j]]  # dB
            loss = torch.maximum(args.quantile * err, (args.quantile - 1) * err).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            history.append(errors(net(vx).numpy(), yv, mv))
        print(f"epoch {epoch + 1}: " + json.dumps(history[-1]))
    tensors = {f"w{i}": layer.weight.detach().contiguous()
               for i, layer in enumerate(net[::2])}
    tensors.update({f"b{i}": layer.bias.detach().contiguous() for i, layer in enumerate(net[::2])})
    tensors["mean"], tensors["scale"] = torch.from_numpy(mean), torch.from_numpy(scale)
    meta = {"format": bl.FORMAT, "below": bl.BELOW, "above": bl.ABOVE, "tau_s": bl.TAU_S,
            "hidden": h, "quantile": args.quantile, "epochs": args.epochs,
            "train": [args.train, *args.more],
            "frames": len(x), "validation": history[-1]}
    save_file(tensors, args.output, metadata={"upband": json.dumps(meta, sort_keys=True)})
    print(f"wrote {args.output}")


def score(args: argparse.Namespace) -> None:
    """Each predictor's error on the extracted crops, by range of cutoffs, as the guard uses
    it (capped at the reference's level)."""
    parts = crops(args.data)
    edges = [*args.edges, np.inf]
    for path in args.models:
        net = (bl.shipped(bl.LOW_UNTIL_HZ) if path == "shipped" else
               bl.shipped(0.0) if path == "shipped-low" else bl.BandLevelModel.load(path))
        for lo, hi in itertools.pairwise(edges):
            chosen = [(feats, y) for fc, feats, y in parts if lo <= fc < hi]
            if not chosen:
                continue
            pred = np.concatenate([np.minimum(net.predict(f), 0.0) for f, _ in chosen])
            y = np.concatenate([y for _, y in chosen])
            result = errors(pred, np.nan_to_num(y), ~np.isnan(y))
            print(f"{path} cutoffs {lo:g}-{hi:g} Hz, {len(chosen)} crops: "
                  + json.dumps({k: round(v, 4) for k, v in result.items()}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="band levels of degraded crops")
    ex.add_argument("--corpus", required=True, help="a corpus folder, or 'synthetic'")
    ex.add_argument("--split", default="train")
    ex.add_argument("--examples", type=int, default=5000, help="crops drawn (before the cutoff "
                    "range keeps some)")
    ex.add_argument("--preset", default="versatile")
    ex.add_argument("--min-cutoff", type=float, default=3000.0,
                    help="lowest cutoff kept (Hz; the guard fills from it up)")
    ex.add_argument("--seed", type=int, default=7)
    ex.add_argument("--seconds", type=float, default=8.0, help="crop length")
    ex.add_argument("-j", "--jobs", type=int, default=2)
    ex.add_argument("-o", "--output", required=True)
    ft = sub.add_parser("fit", help="train the network on extracted levels")
    ft.add_argument("train")
    ft.add_argument("val")
    ft.add_argument("--more", action="append", default=[], metavar="NPZ",
                    help="another training file (extracted with another --seed), repeatable")
    ft.add_argument("--hidden", type=int, default=64)
    ft.add_argument("--quantile", type=float, default=0.2,
                    help="the level predicted: the truth lies under it this often")
    ft.add_argument("--epochs", type=int, default=12)
    ft.add_argument("--batch", type=int, default=1024)
    ft.add_argument("--lr", type=float, default=2e-3)
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--threads", type=int, default=1)
    ft.add_argument("-o", "--output", required=True)
    sc = sub.add_parser("score", help="predictors' errors on extracted levels, by cutoff")
    sc.add_argument("data", help="an .npz from extract (e.g. the validation split's)")
    sc.add_argument("models", nargs="+", help="predictor files, 'shipped' or 'shipped-low'")
    sc.add_argument("--edges", type=float, nargs="+", default=[3000.0, 5000.0, 8000.0],
                    help="cutoff ranges' lower edges (Hz)")
    args = ap.parse_args(argv)
    {"extract": extract, "fit": fit, "score": score}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
