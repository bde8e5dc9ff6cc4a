"""upband enhance: seams, do-no-harm, rates, lengths, formats, channels, batches, bad inputs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import lameenc
import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from upband import audio
from upband.analysis import detect_bandwidth
from upband.cli import main
from upband.degrade import lowpass
from upband.enhancement import (
    UNITTEST_MODEL,
    BandMerge,
    ChunkRunner,
    enhance,
    enhance_file,
    load_enhancer,
    output_rate,
    run_chunked,
)
from upband.models import MODELS, build_model

SR = 44100
DATA = Path(__file__).parent / "data"

#: Every registered architecture at a narrow width: same layer arithmetic (stride, receptive
#: field) as the registered model, a fraction of the arithmetic cost.
NARROW: dict[str, dict[str, Any]] = {
    "arunet": {"widths": (4, 4, 8, 8, 8)},
    "sulun-unet": {"widths": (8, 8, 8, 8)},
    "sulun-unet-bn": {"widths": (8, 8, 8, 8)},
    "sulun-unet-do": {"widths": (8, 8, 8, 8)},
    "sulun-resnet": {"width": 8},
    "sulun-resnet-bn": {"width": 8},
    "sulun-resnet-do": {"width": 8},
    "audiounet": {"widths": (8, 8, 8, 8)},
    "seanet": {"width": 2, "latent": 8},
    "lattner": {"front": (2, 2, 2), "agg_maps": 2, "noise_maps": 2},
    "lattner-det": {"front": (2, 2, 2), "agg_maps": 2},
    "tfgan": {"mult": 16},
    "tfgan-s": {"mult": 16},
}


def random_model(name: str) -> torch.nn.Module:
    """A registered architecture with every weight random (no identity shortcut)."""
    torch.manual_seed(1)
    model = build_model(name, **NARROW.get(name, {}))
    with torch.no_grad():
        for p in model.parameters():
            if not p.abs().max() > 0:  # zero-initialised output layers
                p.normal_(0.0, 0.02)
    return model.eval()


def music_like(seconds: float, sr: int = SR, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Harmonic tones plus noise bursts, full band, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros((channels, t.size))
    for f0 in rng.uniform(110, 440, 4):
        for k in range(1, int(sr / 2 / f0)):
            x += rng.uniform(0.2, 1.0, (channels, 1)) / k * np.sin(2 * np.pi * f0 * k * t
                                                                   + rng.uniform(0, 6.3))
    x += 0.3 * rng.standard_normal(x.shape) * (np.sin(2 * np.pi * 1.5 * t) > 0.7)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# seams: chunked == one pass, for every architecture
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def thirty_seconds() -> np.ndarray:
    return (0.1 * np.random.default_rng(3).standard_normal((2, 30 * SR))).astype(np.float32)


@pytest.mark.parametrize("name", list(MODELS))
def test_chunked_equals_one_pass(name: str, thirty_seconds: np.ndarray) -> None:
    model = random_model(name)
    cutoff = 8000.0 if model.takes_cutoff else None  # the stream's cutoff, told every chunk
    with torch.inference_mode():
        one_pass = model(torch.from_numpy(thirty_seconds)[None], cutoff)[0].numpy()
    assert np.max(np.abs(one_pass - thirty_seconds)) > 1e-3  # the model does something
    for chunk_s, overlap_s in ((5.0, 0.25), (1.3, 0.0), (0.9, 0.1)):
        chunked = run_chunked(model, thirty_seconds, chunk=int(chunk_s * SR),
                              overlap=int(overlap_s * SR), cutoff_hz=cutoff)
        assert chunked.shape == one_pass.shape
        assert np.max(np.abs(chunked - one_pass)) <= 1e-4, (chunk_s, overlap_s)


def test_streamed_blocks_and_batches_equal_one_push() -> None:
    model = random_model("arunet-xs")
    x = music_like(7.0)
    whole = run_chunked(model, x, chunk=SR, overlap=2048)
    runner = ChunkRunner(model, 2, chunk=SR, overlap=2048, batch_size=3)
    pieces, start = [], 0
    for size in (1, 50_000, 3, 100_000, 20_000):
        pieces.append(runner.push(x[:, start:start + size]))
        start += size
    pieces.append(runner.push(x[:, start:], last=True))
    streamed = np.concatenate(pieces, axis=1)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_the_file_driver_runs_the_model_a_block_ahead_with_the_same_output(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # enhance_file runs the model and the compensation of the next blocks (up to
    # AHEAD_BLOCKS) in a second thread while this block is guarded, merged and written: what
    # comes out is what pushing block by block gives, and an error in either thread comes out
    # of the driver
    from upband.enhancement import files
    from upband.enhancement.pipeline import Pipeline, choose_route
    from upband.enhancement.settings import Settings
    net = load_enhancer(None, device="cpu")
    x = lowpass(music_like(6.0), SR, 9000.0, "butter:6")
    route = choose_route(detect_bandwidth(x, SR), SR, 2, net, Settings())
    assert route.guard and route.compensate and route.fill_db is not None
    cuts = [0, 1, 30_000, 100_000, 100_003, 200_000, x.shape[1]]
    blocks = [(x[:, a:b], b == x.shape[1]) for a, b in itertools.pairwise(cuts)]
    one = Pipeline.build(net, route, Settings())
    expected = [one.push(block, last=last) for block, last in blocks]
    got = list(files._pushed(Pipeline.build(net, route, Settings()), iter(blocks)))
    assert [(n, last) for _, n, last in got] == [(b.shape[1], last) for b, last in blocks]
    for (out, _, _), want in zip(got, expected, strict=True):
        np.testing.assert_array_equal(out, want)
    assert sum(out.shape[1] for out, _, _ in got) == x.shape[1]
    assert np.std(np.concatenate([o for o, _, _ in got], axis=1) - x) > 1e-4  # enhanced

    def broken(self: Pipeline, block: np.ndarray, last: bool = False) -> Any:
        raise RuntimeError("model failed")

    monkeypatch.setattr(Pipeline, "front", broken)
    with pytest.raises(RuntimeError, match="model failed"):
        list(files._pushed(Pipeline.build(net, route, Settings()), iter(blocks)))


@pytest.mark.parametrize("length", [0, 1, 777, 8192, 44103])
def test_chunker_any_length(length: int) -> None:
    model = random_model(UNITTEST_MODEL)
    x = np.random.default_rng(0).standard_normal((2, length)).astype(np.float32)
    y = run_chunked(model, x, chunk=1000, overlap=100)
    assert y.shape == (2, length)
    if length:
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)[None])[0].numpy()
        np.testing.assert_allclose(y, ref, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# do no harm
# ---------------------------------------------------------------------------------------------


def band_error_db(ref: np.ndarray, est: np.ndarray, sr: int, below_hz: float) -> float:
    """Power of est - ref below ``below_hz`` relative to ref's power there (dB).

    Welch averages of Hann-windowed segments: a plain FFT of the whole signal would leak the
    model's loud high band into the low bins through its rectangular window.
    """
    f, p_err = signal.welch(est - ref, sr, nperseg=16384, axis=-1)
    _, p_ref = signal.welch(ref, sr, nperseg=16384, axis=-1)
    band = f < below_hz
    return float(10 * np.log10(p_err[..., band].sum() / p_ref[..., band].sum()))


@pytest.mark.parametrize("cutoff", [4000.0, 11025.0])
def test_merge_keeps_the_input_below_its_cutoff(cutoff: float) -> None:
    x = lowpass(music_like(6.0), SR, cutoff, "cheby1:8")
    found = detect_bandwidth(x, SR)
    y, rate = enhance(x, SR, model=UNITTEST_MODEL, device="cpu", clip_mode="none")
    assert rate == SR and y.shape == x.shape
    assert band_error_db(x, y, SR, found.cutoff_hz) < -60
    # ... and the random model really did change the band above it
    assert band_error_db(x, y, SR, SR / 2) > -40
    unmerged, _ = enhance(x, SR, model=UNITTEST_MODEL, device="cpu", merge=False,
                          clip_mode="none")
    assert band_error_db(x, unmerged, SR, found.cutoff_hz) > -30


def test_band_merge_streaming_equals_one_block() -> None:
    rng = np.random.default_rng(0)
    x, m = rng.standard_normal((2, 2, 30_000))
    whole = BandMerge(3000.0, SR, 2).push(x, m, last=True)
    merge = BandMerge(3000.0, SR, 2)
    parts = [merge.push(x[:, :10], m[:, :10]), merge.push(x[:, 10:12_345], m[:, 10:12_345]),
             merge.push(x[:, 12_345:], m[:, 12_345:], last=True)]
    streamed = np.concatenate(parts, axis=1)
    assert streamed.shape == whole.shape == (2, 30_000)
    # the same to single-precision rounding (the FFTs run in float32; unit-variance signals)
    np.testing.assert_allclose(streamed, whole, atol=2e-6)


def test_full_band_input_comes_back_bit_identical(tmp_path: Path) -> None:
    x = music_like(3.0)
    y, rate = enhance(x, SR, model=UNITTEST_MODEL, device="cpu")
    assert rate == SR and np.array_equal(x, y)
    for subtype, ext in (("PCM_16", "wav"), ("PCM_24", "flac"), ("FLOAT", "wav")):
        src = tmp_path / f"in_{subtype}.{ext}"
        audio.write(src, x, SR, subtype=subtype)
        report = enhance_file(src, tmp_path / f"out_{subtype}.{ext}", UNITTEST_MODEL,
                              device="cpu")
        assert report.status == "passthrough"
        a, b = (sf.read(p, dtype="int32" if subtype != "FLOAT" else "float32")[0]
                for p in (src, tmp_path / f"out_{subtype}.{ext}"))
        assert np.array_equal(a, b) and audio.info(tmp_path / f"out_{subtype}.{ext}").subtype \
            == subtype


def test_resampled_full_band_input_is_dithered_not_called_a_copy(tmp_path: Path) -> None:
    """A full-band input at another output rate is new audio: resampled, then written like any
    output (16-bit gets TPDF dither), and the report says so instead of claiming a copy."""
    src = tmp_path / "in.wav"
    audio.write(src, music_like(2.0), SR, subtype="PCM_16")
    report = enhance_file(src, tmp_path / "out.wav", UNITTEST_MODEL, device="cpu",
                          sample_rate=48000)
    assert report.status == "passthrough" and report.output_rate == 48000
    assert "copied" not in report.message
    assert "resampled from 44100 Hz to 48000 Hz" in report.message
    x, _ = audio.read(src)
    resampled = audio.StreamResampler(SR, 48000, 2).process(x, last=True)
    audio.write(tmp_path / "plain.wav", resampled, 48000, subtype="PCM_16")  # no dither
    out, plain = (sf.read(tmp_path / name, dtype="int16")[0].astype(np.int32)
                  for name in ("out.wav", "plain.wav"))
    assert out.shape == plain.shape == (audio.resampled_length(x.shape[1], SR, 48000), 2)
    diff = out - plain
    assert np.mean(diff != 0) > 0.2  # dithered: not the plain rounding of the resampled input
    assert np.max(np.abs(diff)) <= 1 and abs(float(np.mean(diff))) < 0.02  # +-1 LSB, unbiased


def test_numpy_torch_and_mono_api() -> None:
    x = lowpass(music_like(2.0, channels=1), SR, 6000.0, "butter:8")
    y_np, _ = enhance(x[0], SR, model=UNITTEST_MODEL, device="cpu")
    y_t, _ = enhance(torch.from_numpy(x[0]), SR, model=UNITTEST_MODEL, device="cpu")
    assert isinstance(y_np, np.ndarray) and isinstance(y_t, torch.Tensor)
    assert y_np.shape == (x.shape[1],) and tuple(y_t.shape) == (x.shape[1],)
    np.testing.assert_allclose(y_t.numpy(), y_np, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# files: rates, lengths, sample formats, containers, channels
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate, expected", [
    (8000, 48000), (11025, 44100), (16000, 48000), (22050, 44100), (24000, 48000),
    (32000, 48000), (44100, 44100), (48000, 48000), (88200, 88200), (96000, 96000),
    (192000, 192000)])
def test_output_rate_and_exact_length(tmp_path: Path, rate: int, expected: int) -> None:
    assert output_rate(rate) == expected
    frames = int(0.77 * rate) + 3
    x = lowpass(music_like(frames / rate + 0.01, rate, 1)[:, :frames], rate,
                min(0.3 * rate / 2, 8000.0), "ellip:8")
    src = tmp_path / "in.flac"
    audio.write(src, x, rate, subtype="PCM_24")
    report = enhance_file(src, tmp_path / "out.flac", UNITTEST_MODEL, device="cpu")
    info = audio.info(tmp_path / "out.flac")
    assert report.status == "enhanced"
    assert info.sample_rate == expected
    assert info.frames == audio.resampled_length(frames, rate, expected)


def test_sample_rate_and_bit_depth_overrides(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    audio.write(src, lowpass(music_like(1.0), SR, 5000.0, "butter:8"), SR, subtype="PCM_16")
    enhance_file(src, tmp_path / "o.wav", UNITTEST_MODEL, device="cpu", sample_rate=96000,
                 bit_depth="32f")
    info = audio.info(tmp_path / "o.wav")
    assert (info.sample_rate, info.subtype, info.frames) == (96000, "FLOAT", 96000)


def write_mp3(path: Path, x: np.ndarray, sr: int, kbps: int) -> None:
    enc = lameenc.Encoder()
    enc.set_bit_rate(kbps)
    enc.set_in_sample_rate(sr)
    enc.set_channels(x.shape[0])
    pcm = (np.clip(x.T, -1, 1) * 32767).astype("<i2")
    path.write_bytes(bytes(enc.encode(pcm.tobytes())) + bytes(enc.flush()))


@pytest.mark.parametrize("kind", ["wav16", "wav24", "wavfloat", "flac", "mp3", "mp3-8k",
                                  "ogg", "opus"])
def test_every_input_format(tmp_path: Path, kind: str) -> None:
    rate = 8000 if kind == "mp3-8k" else 48000 if kind == "opus" else SR
    x = lowpass(music_like(2.0, rate), rate, min(6000.0, rate * 0.3), "cheby1:8")
    src = tmp_path / {"wav16": "a.wav", "wav24": "a.wav", "wavfloat": "a.wav", "flac": "a.flac",
                      "mp3": "a.mp3", "mp3-8k": "a.mp3", "ogg": "a.ogg", "opus": "a.opus"}[kind]
    if kind.startswith("mp3"):
        write_mp3(src, x, rate, 8 if kind == "mp3-8k" else 64)
    elif kind in ("ogg", "opus"):
        sf.write(src, x.T, rate, format="OGG", subtype="VORBIS" if kind == "ogg" else "OPUS")
    else:
        subtype = {"wav16": "PCM_16", "wav24": "PCM_24", "wavfloat": "FLOAT"}.get(kind, "PCM_16")
        audio.write(src, x, rate, subtype=subtype)
    dst = tmp_path / "out.flac" if kind != "wavfloat" else tmp_path / "out.wav"
    report = enhance_file(src, dst, UNITTEST_MODEL, device="cpu")
    src_info, out = audio.info(src), audio.info(dst)
    assert report.status == "enhanced"
    # LAME picks its own stream rate at low bitrates (64 kbit/s stereo: 24 kHz)
    assert out.channels == 2 and out.sample_rate == output_rate(src_info.sample_rate)
    assert out.frames == audio.resampled_length(audio.read(src)[0].shape[1],
                                                src_info.sample_rate, out.sample_rate)
    expected_subtype = {"wav16": "PCM_16", "wav24": "PCM_24", "wavfloat": "FLOAT",
                        "flac": "PCM_16"}.get(kind, "PCM_24")  # lossy inputs give 24-bit
    assert out.subtype == expected_subtype, src_info


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_any_channel_count(tmp_path: Path, channels: int) -> None:
    x = lowpass(music_like(1.5, channels=channels, seed=channels), SR, 7000.0, "butter:8")
    src = tmp_path / "in.wav"
    audio.write(src, x, SR, subtype="PCM_24")
    # float output and no clip handling: the random model is loud, integers would clip it
    enhance_file(src, tmp_path / "out.wav", UNITTEST_MODEL, device="cpu", clip_mode="none",
                 bit_depth="32f")
    y, _ = audio.read(tmp_path / "out.wav")
    assert y.shape == x.shape and audio.info(tmp_path / "out.wav").subtype == "FLOAT"
    assert band_error_db(x, y, SR, 6500.0) < -60
    # a stereo model takes a stereo file as a pair and more channels as pairs in their order
    # (5.1: three pairs), so channels 2-3 of the 6-channel file equal that pair enhanced alone
    # (the level guard, joint for a stereo file and per channel beyond, is left out here)
    if channels == 6:
        found = detect_bandwidth(x, SR)
        kw: dict[str, Any] = {"model": UNITTEST_MODEL, "device": "cpu", "clip_mode": "none",
                              "bandwidth": found, "guard": False}
        together, _ = enhance(x, SR, **kw)
        pair, _ = enhance(x[2:4], SR, **kw)
        np.testing.assert_allclose(together[2:4], pair, atol=1e-5)
        dual, _ = enhance(x[1:2], SR, **kw)  # a channel alone: dual mono, not its pair
        assert np.max(np.abs(together[1] - dual[0])) > 1e-3


@pytest.mark.parametrize("frames", [1, 2, 100, 4097])
def test_tiny_inputs(tmp_path: Path, frames: int) -> None:
    x = 0.5 * np.random.default_rng(frames).standard_normal((2, frames)).astype(np.float32)
    src = tmp_path / "tiny.wav"
    audio.write(src, np.clip(x, -1, 1), 22050, subtype="PCM_16")
    report = enhance_file(src, tmp_path / "out.wav", UNITTEST_MODEL, device="cpu")
    assert audio.info(tmp_path / "out.wav").frames == audio.resampled_length(frames, 22050,
                                                                              44100)
    assert report.status in ("enhanced", "passthrough")


def test_silence_is_copied_through(tmp_path: Path) -> None:
    src = tmp_path / "silence.wav"
    audio.write(src, np.zeros((2, SR * 2), np.float32), SR, subtype="PCM_16")
    report = enhance_file(src, tmp_path / "out.wav", UNITTEST_MODEL, device="cpu")
    assert report.status == "passthrough"
    assert np.all(audio.read(tmp_path / "out.wav")[0] == 0)


def test_full_scale_square_wave_is_rescaled_not_clipped(tmp_path: Path) -> None:
    t = np.arange(22050 * 2) / 22050
    square = np.sign(np.sin(2 * np.pi * 441 * t))[None].repeat(2, 0).astype(np.float32)
    src = tmp_path / "square.wav"
    audio.write(src, square, 22050, subtype="PCM_16")  # full scale, band-limited by its rate
    report = enhance_file(src, tmp_path / "out.wav", UNITTEST_MODEL, device="cpu",
                          clip_mode="rescale")
    y, rate = audio.read(tmp_path / "out.wav")
    assert rate == 44100 and report.status == "enhanced"
    assert report.clip_gain < 1.0  # the 44.1 kHz square's Gibbs overshoot is above full scale
    assert np.max(np.abs(y)) <= 1.0 and np.mean(np.abs(y) >= 32767 / 32768) < 1e-3


def test_long_input_in_bounded_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    minutes = 3
    x = np.tile(lowpass(music_like(10.0, channels=1), SR, 8000.0, "cheby1:8"), 6 * minutes)
    src = tmp_path / "long.flac"
    audio.write(src, x, SR, subtype="PCM_16")
    largest = []
    real_read = audio.AudioReader.read

    def spy(self: audio.AudioReader, frames: int = -1) -> np.ndarray:
        block = real_read(self, frames)
        largest.append(block.shape[1])
        return block

    monkeypatch.setattr(audio.AudioReader, "read", spy)
    report = enhance_file(src, tmp_path / "out.flac", UNITTEST_MODEL, device="cpu")
    assert audio.info(tmp_path / "out.flac").frames == x.shape[1]
    assert max(largest) <= 12 * SR  # never the whole file (detection reads excerpts, the
    assert report.status == "enhanced"  # pipeline 10 s blocks, the spool 2^18 frames)


# ---------------------------------------------------------------------------------------------
# the command: batches, naming, resume, errors
# ---------------------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["enhance", "--model", UNITTEST_MODEL, "-d", "cpu", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def make_tree(root: Path) -> list[Path]:
    x = lowpass(music_like(1.0), SR, 6000.0, "butter:8")
    files = [root / "a.wav", root / "sub" / "b.flac", root / "sub" / "deeper" / "c.wav"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        audio.write(f, x, SR, subtype="PCM_16")
    return files


def test_one_file_to_one_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = make_tree(tmp_path)[0]
    code, out, _ = cli(capsys, str(src), "-o", str(tmp_path / "x.flac"), "--report",
                       str(tmp_path / "r.json"))
    assert code == 0 and "enhanced: " in out and "1 enhanced" in out
    assert audio.info(tmp_path / "x.flac").frames == SR
    record = json.loads((tmp_path / "r.json").read_text())[0]
    assert record["status"] == "enhanced" and 5500 < record["merge_cutoff_hz"] < 6600
    assert record["bandwidth"]["full_band"] is False and record["output_rate"] == SR


def test_folder_mirrors_tree_and_resumes(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    make_tree(tmp_path / "in")
    code, _, _ = cli(capsys, str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-r")
    outputs = sorted(p.relative_to(tmp_path / "out").as_posix()
                     for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert code == 0
    assert outputs == ["a.upband.wav", "sub/b.upband.flac", "sub/deeper/c.upband.wav"]
    stamp = (tmp_path / "out" / "a.upband.wav").stat().st_mtime_ns
    code, out, _ = cli(capsys, str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-r")
    assert code == 0 and "0 enhanced" in out and "3 skipped" in out
    assert (tmp_path / "out" / "a.upband.wav").stat().st_mtime_ns == stamp
    code, out, _ = cli(capsys, str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-r", "-f",
                       "--format", "flac", "--filename", "{stem}-hd.{ext}")
    assert code == 0 and (tmp_path / "out" / "sub" / "deeper" / "c-hd.flac").exists()


def test_batch_with_a_corrupt_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    files = make_tree(tmp_path / "in")
    (tmp_path / "in" / "broken.flac").write_bytes(b"fLaC" + bytes(500))
    code, _, err = cli(capsys, str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-r")
    assert code == 1
    assert err.count("upband: error: ") == 1 and "broken.flac" in err and "Traceback" not in err
    assert "3 enhanced" in err and "1 failed" in err
    assert all((tmp_path / "out" / f.relative_to(tmp_path / "in")).with_name(
        f.stem + ".upband" + f.suffix).exists() for f in files)
    assert not list((tmp_path / "out").glob("broken*"))


def test_bad_inputs_give_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                  bad_inputs: dict[str, tuple[Path, str]]) -> None:
    for kind, (path, words) in bad_inputs.items():
        if kind == "directory":
            continue  # a folder is a valid enhance input (reported as holding no audio below)
        code, _, err = cli(capsys, str(path), "-o", str(tmp_path / "o.wav"))
        assert code == 1 and err.count("upband: error: ") == 1 and words in err, kind
        assert "Traceback" not in err and not (tmp_path / "o.wav").exists()
    code, _, err = cli(capsys, str(bad_inputs["directory"][0]))
    assert code == 2 and "no audio files found" in err


def test_never_overwrites_input_or_output(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    src = make_tree(tmp_path)[0]
    before = src.read_bytes()
    code, _, err = cli(capsys, str(src), "-o", str(src))
    # an output that is its input is a wrong command line (2), in enhance as in degrade
    assert code == 2 and "never overwrites its input" in err and src.read_bytes() == before
    (tmp_path / "taken.wav").write_bytes(b"keep")
    code, out, _ = cli(capsys, str(src), "-o", str(tmp_path / "taken.wav"))
    assert code == 0 and "skipped" in out and (tmp_path / "taken.wav").read_bytes() == b"keep"


@pytest.mark.parametrize("argv, words", [
    (["--chunk-seconds", "0"], "--chunk-seconds (chunk_seconds) must be a positive"),
    (["--overlap-seconds", "nan"], "--overlap-seconds (overlap_seconds) must be a non-negative"),
    (["--batch-size", "0"], "--batch-size (batch_size) must be at least 1"),
    (["--bit-depth", "12"], "unsupported output subtype"),
    (["--filename", "out.{ext}"], "--filename must contain {stem}"),
    (["--model", "nope"], "unknown model 'nope'"),
])
def test_bad_options(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                     words: str) -> None:
    src = make_tree(tmp_path)[0]
    code = main(["enhance", str(src), "-d", "cpu", *(["--model", UNITTEST_MODEL]
                                                      if "--model" not in argv else []), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and words in err


def test_load_enhancer_from_checkpoint(tmp_path: Path) -> None:
    from upband.states import save_model

    model = random_model("arunet-xs")
    save_model(model, tmp_path / "m.safetensors", sample_rate=SR)
    loaded = load_enhancer(str(tmp_path / "m.safetensors"), device="cpu")
    x = torch.randn(1, 2, 4096)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))


def test_one_hour_input(tmp_path: Path) -> None:
    """An hour of audio end to end (kept cheap: 8 kHz mono in, 16 kHz out, the tiny model; the
    60-minute 44.1 kHz stereo run with the real model is benchmarks/memory.py)."""
    rate, minutes = 8000, 60
    block = lowpass(music_like(10.0, rate, 1), rate, 3000.0, "cheby1:8")
    src = tmp_path / "hour.wav"
    with audio.AudioWriter(src, rate, 1, subtype="PCM_16") as w:
        for _ in range(6 * minutes):
            w.write(block)
    report = enhance_file(src, tmp_path / "hour.upband.wav", UNITTEST_MODEL, device="cpu",
                          sample_rate=16000)
    out = audio.info(tmp_path / "hour.upband.wav")
    assert report.status == "enhanced" and out.duration == pytest.approx(3600.0)
    assert out.frames == 2 * 6 * minutes * block.shape[1]
