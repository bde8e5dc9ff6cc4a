"""The shipped pretrained models: files, checksums, headers, and the default model's quality on
music it never saw (``tests/data/loop_mika_3s.flac``, from the standard corpus's test split)."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import numpy as np
import pytest

from upband import audio, metrics
from upband.cli import main
from upband.degrade import codecs, lowpass
from upband.enhancement import enhance
from upband.models import PRETRAINED
from upband.models.registry import DEFAULT_PRETRAINED
from upband.states import file_sha256, load_pretrained, read_header

DATA = Path(__file__).parent / "data"
PACKAGE = Path(str(importlib.resources.files("upband") / "pretrained"))
MAX_BYTES = 16 * 1000 * 1000
#: The default model must at least cut the input's log-spectral distance (lsd_ssr) by this
#: factor. Measured with the shipped weights on this excerpt: 5.736 -> 1.556, 4.948 -> 1.224,
#: 6.026 -> 1.459 (ratios 0.27, 0.25, 0.24), with SNR changes of -0.03, -0.05 and 0.00 dB.
LSD_RATIO = {"butter:6@8000": 0.5, "cheby1:6@11025": 0.5, "mp3@64": 0.5}


def test_default_is_shipped() -> None:
    assert DEFAULT_PRETRAINED in PRETRAINED


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_shipped_file_matches_its_entry(name: str) -> None:
    entry = PRETRAINED[name]
    path = PACKAGE / entry.file
    assert path.is_file() and path.stat().st_size <= MAX_BYTES
    assert file_sha256(path) == entry.sha256
    header = read_header(path)
    assert (header.architecture, header.sample_rate) == (entry.architecture, entry.sample_rate)
    assert header.metadata["pretrained_name"] == name
    # a model card documents it
    assert (Path(__file__).parents[1] / header.metadata["model_card"]).is_file()
    net = load_pretrained(name)
    assert net.name == entry.architecture and not net.training


@pytest.fixture(scope="module")
def held_out() -> tuple[np.ndarray, int]:
    x, sr = audio.read(DATA / "loop_mika_3s.flac")
    assert sr == 44100 and x.shape == (2, 3 * sr)
    return x, sr


@pytest.mark.parametrize("degradation", ["butter:6@8000", "cheby1:6@11025", "mp3@64"])
def test_default_model_restores_held_out_music(held_out: tuple[np.ndarray, int],
                                               degradation: str) -> None:
    """Lower log-spectral distance than the degraded input, and no SNR lost (do-no-harm)."""
    x, sr = held_out
    kind, value = degradation.split("@")
    y = codecs.mp3(x, sr, int(value)) if kind == "mp3" else lowpass(x, sr, float(value), kind)
    out, rate = enhance(y, sr, device="cpu")
    assert rate == sr and out.shape == x.shape
    lsd_in, lsd_out = float(metrics.lsd_ssr(x, y, sr)), float(metrics.lsd_ssr(x, out, sr))
    snr_in, snr_out = float(metrics.snr(x, y)), float(metrics.snr(x, out))
    assert lsd_out < LSD_RATIO[degradation] * lsd_in, (lsd_in, lsd_out)
    assert snr_out > snr_in - 0.1, (snr_in, snr_out)


def test_enhance_command_uses_the_shipped_default(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    x, sr = audio.read(DATA / "loop_mika_3s.flac")
    src = tmp_path / "dull.flac"
    audio.write(src, lowpass(x, sr, 6000.0, "cheby1:6"), sr, subtype="PCM_16")
    report = tmp_path / "report.json"
    assert main(["enhance", str(src), "-o", str(tmp_path / "out.flac"), "-q",
                 "--report", str(report)]) == 0
    record = json.loads(report.read_text())[0]
    assert record["model"] == DEFAULT_PRETRAINED and record["status"] == "enhanced"
    out, rate = audio.read(tmp_path / "out.flac")
    assert rate == sr and out.shape == x.shape
    assert float(metrics.lsd_ssr(x, out, sr)) < float(metrics.lsd_ssr(x, audio.read(src)[0], sr))


def test_shipped_vocoder_repairs_the_phase_above_the_cutoff_only(
        held_out: tuple[np.ndarray, int]) -> None:
    """TD-PR with the shipped vocoder on held-out music low-passed at 8 kHz: the band below the
    cutoff is the default model's (the input's), the band above keeps its level and changes
    its phase, and the result still restores the spectrum (LSD far below the input's)."""
    x, sr = held_out
    y = lowpass(x, sr, 8000.0, "butter:6")
    plain, _ = enhance(y, sr, device="cpu")
    repaired, rate = enhance(y, sr, device="cpu", phase_repair=True)
    assert rate == sr and repaired.shape == x.shape
    spec_p, spec_r = np.fft.rfft(plain, axis=-1), np.fft.rfft(repaired, axis=-1)
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / sr)
    low, high = freqs < 7000, freqs > 9000
    low_error = np.sum(np.abs(spec_r[:, low] - spec_p[:, low]) ** 2)
    assert 10 * np.log10(np.sum(np.abs(spec_p[:, low]) ** 2) / low_error) > 40
    energy = np.sum(np.abs(spec_r[:, high]) ** 2) / np.sum(np.abs(spec_p[:, high]) ** 2)
    assert 0.5 < energy < 2.0
    assert not np.allclose(repaired, plain, atol=1e-4)
    assert float(metrics.lsd_ssr(x, repaired, sr)) < 0.5 * float(metrics.lsd_ssr(x, y, sr))


@pytest.mark.parametrize("name", ["upband-lattner", "upband-lattner-raw", "upband-lattner-det"])
def test_mp3_restorers_fill_the_band_of_a_held_out_mp3(held_out: tuple[np.ndarray, int],
                                                       name: str) -> None:
    """The shipped MP3 restorers on the held-out excerpt through LAME at 32 kbit/s (each channel
    a mono stream, as they were trained): a lower log-spectral distance than the MP3's and no
    SNR lost (the merge keeps the MP3 below its cutoff). Measured: LSD 6.73 -> 2.20 (sto, seed
    0; 2.69 with its 1 500-iteration predecessor), 2.40 (raw) and 2.71 (det), SNR 16.742 ->
    16.741 / 16.741 / 16.742 dB. Not asserted: ViSQOL (an optional package), 2.310 -> 2.443
    for sto (2.488 and 2.178 with its two predecessors: one draw of one clip), 2.350 for raw,
    2.407 for det (2.314 before its continuation) (docs/models/upband-lattner.md)."""
    x, sr = held_out
    y = codecs.mp3(x, sr, 32, per_channel=True)
    # the restorer's own band: the guard's fill (on by default) would add its soft noise where
    # the band is fainter, which costs its own trace of SNR (16.742 -> 16.688 dB here, sto)
    out, rate = enhance(y, sr, model=name, device="cpu", fill=False)
    assert rate == sr and out.shape == x.shape
    assert float(metrics.lsd_ssr(x, out, sr)) < 0.6 * float(metrics.lsd_ssr(x, y, sr))
    assert float(metrics.snr(x, out)) > float(metrics.snr(x, y)) - 0.05
