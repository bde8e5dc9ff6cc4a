#!/usr/bin/env python3
"""Render public-domain scores into full-band, soft acoustic music for training (docs/data.md).

    python scripts/render_scores.py --out /work/rendered --pieces 300
    upband corpus build /work/rendered::PD-score+MIT-soundfont -o /work/rendered-corpus

The scores come from the corpus shipped with music21 (PyPI ``music21``: Bach chorales,
Beethoven, Mozart and Haydn string quartets, Monteverdi madrigals, Palestrina, folk tunes; the
works are in the public domain, music21 itself is BSD-3-Clause). Each piece is played by one
ensemble drawn from :data:`ENSEMBLES` (piano, string quartet, string orchestra, organ, nylon and
steel guitar, harpsichord, harp, winds, choir "aahs") through FluidSynth (Debian ``fluidsynth``)
and the lossless MuseScore General soundfont (Debian ``musescore-general-soundfont-lossless``,
MIT licence), at 44.1 kHz stereo with FluidSynth's room reverb. Dynamics are what real acoustic
recordings have and the standard corpus lacks: a base loudness per piece from pianissimo to
forte, a slow swell across the piece and per-note variation, then a peak level drawn from
-24 to -1 dBFS, so quiet pieces stay quiet.

Every draw (ensemble, tempo, loudness) comes from a generator seeded by the piece's name, so the
same piece renders the same way on every machine and rerun; a piece already rendered is kept,
so an interrupted run continues. Each output ``NAME.flac`` (24-bit) gets a line in
``renders.jsonl`` with its score, ensemble, tempo scale, level and licence.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_standard_corpus import ScriptError, package_tree

SAMPLE_RATE = 44100
SOUNDFONT_PACKAGE = "musescore-general-soundfont-lossless"
SOUNDFONT_PATH = "usr/share/sounds/sf2/MuseScore_General_Full.sf2"
DEFAULT_CACHE = Path("~/.cache/upband/debs").expanduser()
LICENCE = ("public-domain score (music21 corpus, BSD-3-Clause); rendered with MuseScore "
           "General soundfont (MIT)")
#: Composers of the music21 corpus drawn from, with the share of pieces each gets.
COMPOSERS = {"bach": 0.35, "beethoven": 0.08, "mozart": 0.06, "haydn": 0.04,
             "monteverdi": 0.12, "palestrina": 0.15, "trecento": 0.05, "josquin": 0.02,
             "essenFolksong": 0.05, "ryansMammoth": 0.08}
#: Longest rendered piece (seconds); longer ones are cut (with a fade) to keep the corpus varied.
MAX_SECONDS = 240.0
#: A score that plays longer than this (seconds) is not rendered at all.
MAX_PLAY_SECONDS = 1200.0


@dataclass(frozen=True)
class Ensemble:
    """General MIDI programs for the parts, top voice first (the last repeats for more parts)."""

    name: str
    programs: tuple[int, ...]


ENSEMBLES = (
    Ensemble("piano", (0,)),
    Ensemble("string-quartet", (40, 40, 41, 42)),
    Ensemble("strings", (48,)),
    Ensemble("organ", (19,)),
    Ensemble("nylon-guitar", (24,)),
    Ensemble("steel-guitar", (25,)),
    Ensemble("harpsichord", (6,)),
    Ensemble("harp", (46,)),
    Ensemble("winds", (73, 68, 71, 70)),
    Ensemble("choir", (52,)),
)


class RenderError(Exception):
    """A failure of this script, reported as one line."""


def _rng(name: str) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


def choose_pieces(count: int, seed: int) -> list[str]:
    """``count`` score paths of the music21 corpus, spread over :data:`COMPOSERS`, in a fixed
    order for a given ``seed`` (the same list on every machine)."""
    from music21 import corpus  # imported here: a large import only this step needs

    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for composer, share in COMPOSERS.items():
        paths = sorted(str(p) for p in corpus.getComposer(composer))
        take = min(len(paths), max(1, round(share * count)))
        chosen += [paths[i] for i in sorted(rng.choice(len(paths), take, replace=False))]
    return chosen[:count] if len(chosen) > count else chosen


def piece_name(score_path: str) -> str:
    """A stable file name for a score: composer folder and stem."""
    p = Path(score_path)
    return f"{p.parent.name}-{p.stem}".replace(" ", "_")


def score_to_midi(score_path: str, ensemble: Ensemble, rng: np.random.Generator,
                  midi_path: Path) -> tuple[float, float]:
    """Write the score as MIDI with the ensemble's programs and drawn dynamics; returns the
    tempo scale used and how long the score plays (seconds). A score that would play for more
    than ``MAX_PLAY_SECONDS`` is refused (:class:`RenderError`) before anything is rendered."""
    from music21 import converter, instrument, tempo

    score = converter.parse(score_path)
    parts = list(score.parts) if hasattr(score, "parts") and score.parts else [score]
    base = rng.uniform(30, 95)              # pianissimo .. forte
    swell = rng.uniform(-20, 20)            # a slow change across the piece
    scale = float(rng.uniform(0.8, 1.2))
    for i, part in enumerate(parts):
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            old.activeSite.remove(old)
        inst = instrument.Instrument()
        inst.midiProgram = ensemble.programs[min(i, len(ensemble.programs) - 1)]
        inst.midiChannel = i % 15 if i < 9 else i % 15 + 1   # channel 10 is percussion
        part.insert(0, inst)
        notes = list(part.recurse().notes)
        for k, n in enumerate(notes):
            pos = k / max(1, len(notes) - 1)
            v = base + swell * np.sin(np.pi * pos) + rng.normal(0, 6)
            n.volume.velocity = int(np.clip(v, 12, 120))
    marks = list(score.recurse().getElementsByClass(tempo.MetronomeMark))
    bpm = (marks[0].number if marks and marks[0].number else rng.uniform(60, 100)) * scale
    for m in marks:
        m.activeSite.remove(m)
    for part in parts:
        part.insert(0, tempo.MetronomeMark(number=float(bpm)))
    seconds = float(score.highestTime) * 60.0 / float(bpm)
    if seconds > MAX_PLAY_SECONDS:
        raise RenderError(f"the score plays for {seconds:.0f} s (more than {MAX_PLAY_SECONDS:g})")
    score.write("midi", fp=str(midi_path))
    return scale, seconds


def render(midi_path: Path, soundfont: Path, wav_path: Path, seconds: float) -> None:
    """FluidSynth, non-interactive, to a 44.1 kHz stereo WAV; given a minute plus a fifth of
    the ``seconds`` the score plays (it renders far faster than that). The MIDI of a few
    corpus files plays far longer than its score: K. 458/iii (201 s of score) had rendered
    38 hours, 24 GB of WAV, when it was stopped."""
    cmd = ["fluidsynth", "-ni", "-q", "-r", str(SAMPLE_RATE), "-g", "0.5", "-o",
           "synth.reverb.active=1", "-F", str(wav_path), str(soundfont), str(midi_path)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True,
                       timeout=60 + seconds / 5)
    except FileNotFoundError:
        raise RenderError("fluidsynth is not installed (apt-get install fluidsynth)") from None
    except subprocess.TimeoutExpired:
        raise RenderError(f"fluidsynth still running after {60 + seconds / 5:.0f} s") from None
    except subprocess.CalledProcessError as err:
        raise RenderError(f"fluidsynth failed: {(err.stderr or '').strip()[:200]}") from None


def finish(wav_path: Path, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Trim silence, cut to :data:`MAX_SECONDS`, set the drawn peak level; (audio [T, 2], dB)."""
    x, sr = sf.read(str(wav_path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise RenderError(f"fluidsynth wrote {sr} Hz")
    loud = np.flatnonzero(np.abs(x).max(axis=1) > 1e-4)
    if loud.size == 0:
        raise RenderError("silent render")
    x = x[max(0, loud[0] - SAMPLE_RATE // 20): loud[-1] + SAMPLE_RATE]
    limit = int(MAX_SECONDS * SAMPLE_RATE)
    if len(x) > limit:
        x = x[:limit].copy()
        fade = SAMPLE_RATE * 2
        x[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    level_db = float(rng.uniform(-24.0, -1.0))
    x *= 10 ** (level_db / 20) / float(np.abs(x).max())
    return x, level_db


def soundfont_path(cache: Path, given: Path | None) -> Path:
    """The soundfont: ``given``, else unpacked from the Debian package into ``cache``."""
    if given is not None:
        if not given.is_file():
            raise RenderError(f"{given}: no such soundfont")
        return given
    # the corpus script's download-and-unpack: atomic, and it makes the cache's folders
    tree = package_tree(SOUNDFONT_PACKAGE, cache, None)
    if not (tree / SOUNDFONT_PATH).is_file():
        raise RenderError(f"{tree}: {SOUNDFONT_PACKAGE} holds no {SOUNDFONT_PATH}")
    return tree / SOUNDFONT_PATH


def render_piece(score_path: str, out: Path, soundfont: Path) -> dict[str, object] | None:
    """Render one score into ``out``; returns its ``renders.jsonl`` record (None if kept)."""
    name = piece_name(score_path)
    target = out / f"{name}.flac"
    if target.exists():
        return None
    rng = _rng(name)
    ensemble = ENSEMBLES[int(rng.integers(len(ENSEMBLES)))]
    with tempfile.TemporaryDirectory() as tmp:
        midi, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        scale, seconds = score_to_midi(score_path, ensemble, rng, midi)
        render(midi, soundfont, wav, seconds)
        audio, level = finish(wav, rng)
        partial = Path(tmp) / target.name
        sf.write(str(partial), audio, SAMPLE_RATE, subtype="PCM_24")
        shutil.move(str(partial), target)
    return {"file": target.name, "score": score_path.split("corpus/", 1)[-1],
            "ensemble": ensemble.name, "tempo_scale": round(scale, 3),
            "peak_dbfs": round(level, 2), "seconds": round(len(audio) / SAMPLE_RATE, 2),
            "licence": LICENCE}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder of rendered FLAC files")
    p.add_argument("--pieces", type=int, default=300, help="how many scores (default 300)")
    p.add_argument("--seed", type=int, default=0, help="which scores are chosen (default 0)")
    p.add_argument("--soundfont", type=Path, default=None,
                   help=f"an .sf2 file (default: the Debian package {SOUNDFONT_PACKAGE})")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help="where the Debian package is downloaded and unpacked")
    return p


def stop_on_sigterm() -> None:
    """Let ``kill PID`` (SIGTERM) stop the script as Ctrl-C does: as an exception, so that the
    running FluidSynth is killed (``subprocess.run`` does so on any exception) and the piece's
    temporary folder removed. Killed outright, the script left both behind: a FluidSynth
    writing a WAV without end (40 GB in a quarter of an hour) into ``/tmp``."""
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    stop_on_sigterm()
    try:
        soundfont = soundfont_path(args.cache.expanduser(), args.soundfont)
        pieces = choose_pieces(args.pieces, args.seed)
    except (RenderError, ScriptError, ImportError) as err:
        print(f"render_scores: error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    with (args.out / "renders.jsonl").open("a", encoding="utf-8") as log:
        for i, score in enumerate(pieces, 1):
            try:
                record = render_piece(score, args.out, soundfont)
            except Exception as err:  # music21 raises many kinds of error: skip the piece
                failed += 1
                print(f"[{i}/{len(pieces)}] {piece_name(score)}: skipped ({err})",
                      file=sys.stderr)
                continue
            if record is not None:
                log.write(json.dumps(record, sort_keys=True) + "\n")
                log.flush()
                print(f"[{i}/{len(pieces)}] {record['file']}: {record['ensemble']}, "
                      f"{record['seconds']} s, peak {record['peak_dbfs']} dBFS", file=sys.stderr)
    print(f"{len(pieces) - failed} of {len(pieces)} pieces in {args.out} ({failed} failed)")
    return 1 if failed == len(pieces) else 0


if __name__ == "__main__":
    sys.exit(main())
