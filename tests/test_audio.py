"""upband.audio: decoding, header info, streaming, atomic writes, resampling and every bad input."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import lameenc
import numpy as np
import pytest
import soundfile as sf

from upband import audio
from upband.errors import (
    AudioFileNotFoundError,
    DecodeError,
    EmptyAudioError,
    NonFiniteAudioError,
    NotAFileError,
    OutputExistsError,
    UnsupportedFormatError,
)


def tone(sr: int, seconds: float = 0.5, channels: int = 2, freq: float = 440.0) -> np.ndarray:
    """A [channels, T] sine at amplitude 0.5, each channel a different phase."""
    t = np.arange(int(sr * seconds)) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * freq * t + c) for c in range(channels)]).astype(
        np.float32)


def write_mp3(path: Path, x: np.ndarray, sr: int, kbps: int = 128) -> None:
    enc = lameenc.Encoder()
    enc.set_bit_rate(kbps)
    enc.set_in_sample_rate(sr)
    enc.set_channels(x.shape[0])
    pcm = (np.clip(x.T, -1, 1) * 32767).astype("<i2")
    path.write_bytes(bytes(enc.encode(pcm.tobytes())) + bytes(enc.flush()))


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subtype, tol", [("PCM_16", 2 ** -15), ("PCM_24", 2 ** -23),
                                          ("PCM_32", 2 ** -30), ("FLOAT", 0.0)])
def test_wav_subtypes_scale_to_unit_range(tmp_path: Path, subtype: str, tol: float) -> None:
    x = tone(44100)
    path = tmp_path / "a.wav"
    sf.write(path, x.T, 44100, subtype=subtype)
    y, sr = audio.read(path)
    assert sr == 44100 and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= tol + 1e-7
    i = audio.info(path)
    assert (i.subtype, i.channels, i.frames, i.format) == (subtype, 2, x.shape[1], "WAV")


def test_int16_full_scale_maps_to_minus_one(tmp_path: Path) -> None:
    path = tmp_path / "i.wav"
    sf.write(path, np.array([[-32768, 16384, 32767]], dtype=np.int16).T, 8000)
    y, _ = audio.read(path)
    np.testing.assert_allclose(y[0], [-1.0, 0.5, 32767 / 32768], atol=1e-7)


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000,
                                176400, 192000])
def test_any_rate_8k_to_192k(tmp_path: Path, sr: int) -> None:
    path = tmp_path / "r.flac"
    sf.write(path, tone(sr, 0.1, 1, 100.0).T, sr, subtype="PCM_24")
    y, got = audio.read(path)
    assert got == sr and y.shape == (1, int(sr * 0.1))


@pytest.mark.parametrize("channels", [1, 2, 6, 8])
def test_any_channel_count(tmp_path: Path, channels: int) -> None:
    x = tone(48000, 0.1, channels)
    path = tmp_path / "c.flac"
    sf.write(path, x.T, 48000)
    y, _ = audio.read(path)
    assert y.shape == (channels, 4800)
    np.testing.assert_allclose(y, x, atol=1e-4)


@pytest.mark.parametrize("fmt, subtype, ext", [("OGG", "VORBIS", ".ogg"), ("OGG", "OPUS", ".opus")])
def test_lossy_ogg_formats_decode(tmp_path: Path, fmt: str, subtype: str, ext: str) -> None:
    x = tone(48000, 1.0, 2)
    path = tmp_path / f"x{ext}"
    sf.write(path, x.T, 48000, format=fmt, subtype=subtype)
    y, sr = audio.read(path)
    assert sr == 48000 and y.shape == x.shape
    err = np.sum((y - x) ** 2) / np.sum(x ** 2)
    assert err < 0.05, f"{subtype} round trip lost {10 * np.log10(err):.1f} dB"
    assert audio.info(path).is_lossy


def test_mp3_decodes_and_reports_estimated_length(tmp_path: Path) -> None:
    x = tone(44100, 1.0, 2)
    path = tmp_path / "x.mp3"
    write_mp3(path, x, 44100)
    i = audio.info(path)
    assert (i.format, i.subtype, i.channels, i.frames_exact) == ("MP3", "MPEG_LAYER_III", 2, False)
    assert abs(i.frames - 44100) < 3000
    y, sr = audio.read(path)
    assert sr == 44100 and y.shape[0] == 2 and abs(y.shape[1] - 44100) < 3000


def test_low_rate_low_bitrate_mp3(tmp_path: Path) -> None:
    x = tone(8000, 1.0, 1, 300.0)
    path = tmp_path / "phone.mp3"
    write_mp3(path, x, 8000, kbps=8)
    y, sr = audio.read(path)
    assert sr == 8000 and y.shape[0] == 1 and y.shape[1] > 7000


def test_info_does_not_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros((44100 * 60, 2), np.int16), 44100)
    monkeypatch.setattr(sf.SoundFile, "read", lambda *a, **k: pytest.fail("info decoded audio"))
    i = audio.info(path)
    assert i.duration == pytest.approx(60.0)


def test_blocks_concatenate_to_full_read(tmp_path: Path) -> None:
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 10007)).astype(np.float32)
    path = tmp_path / "b.wav"
    sf.write(path, x.T, 16000, subtype="FLOAT")
    with audio.AudioReader(path) as r:
        blocks = list(r.blocks(1000))
    assert [b.shape[1] for b in blocks] == [1000] * 10 + [7]
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), x)
    with audio.AudioReader(path) as r:
        r.seek(5000)
        np.testing.assert_array_equal(r.read(10), x[:, 5000:5010])
    y, _ = audio.read(path, start=10000, frames=100)
    np.testing.assert_array_equal(y, x[:, 10000:])


# ---------------------------------------------------------------------------------------------
# bad input: one clear error each
# ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileNotFoundError, match="no such file"):
        audio.read(tmp_path / "nope.wav")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(NotAFileError, match="is a directory"):
        audio.info(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match="0 bytes"):
        audio.read(path)


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 2), np.float32), 44100)
    with pytest.raises(EmptyAudioError, match="no audio samples"):
        audio.read(path)


def test_garbage_with_audio_extension_is_a_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.flac"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(DecodeError, match="corrupt or truncated"):
        audio.read(path)


@pytest.mark.parametrize("name, head, what", [
    ("song.m4a", b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "MP4/M4A"),
    ("song.wma", b"\x30\x26\xb2\x75\x8e\x66\xcf\x11" + bytes(8), "ASF/WMA"),
    ("notes.txt", b"hello, this is not audio at all", "unsupported audio format"),
])
def test_unsupported_formats(tmp_path: Path, name: str, head: bytes, what: str) -> None:
    path = tmp_path / name
    path.write_bytes(head + bytes(2048))
    with pytest.raises(UnsupportedFormatError, match=what):
        audio.read(path)


def test_truncated_wav(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    sf.write(path, tone(44100).T, 44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match="truncated"):
        audio.info(path)


def test_truncated_flac(tmp_path: Path) -> None:
    path = tmp_path / "t.flac"
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, (44100, 2)).astype(np.float32)
    sf.write(path, noise, 44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError):
        audio.read(path)
    with pytest.raises(DecodeError), audio.AudioReader(path) as r:
        for _ in r.blocks(4096):
            pass


def test_non_finite_samples(tmp_path: Path) -> None:
    x = tone(8000, 0.5, 1)
    x[0, 1234] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x.T, 8000, subtype="FLOAT")
    with pytest.raises(NonFiniteAudioError, match=r"NaN or infinite samples \(first at 0.154 s\)"):
        audio.read(path)


def test_sample_rate_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "low.wav"
    sf.write(path, np.zeros((400, 1), np.float32), 1000)
    with pytest.raises(UnsupportedFormatError, match="1000 Hz is outside"):
        audio.info(path)


def test_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(os.urandom(100))
    with pytest.raises(DecodeError) as err:
        audio.read(path)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext, subtype, tol", [(".wav", "16", 2 ** -15), (".wav", "24", 2 ** -23),
                                               (".wav", "32f", 0.0), (".flac", "PCM_24", 2 ** -23),
                                               (".flac", "16", 2 ** -15)])
def test_write_round_trip(tmp_path: Path, ext: str, subtype: str, tol: float) -> None:
    x = tone(44100, 0.2, 2)
    path = tmp_path / f"o{ext}"
    audio.write(path, x, 44100, subtype=subtype)
    y, sr = audio.read(path)
    assert sr == 44100 and np.max(np.abs(y - x)) <= tol + 1e-7
    assert audio.info(path).subtype == audio.normalize_subtype(subtype)


def test_write_multichannel_wav_uses_wavex(tmp_path: Path) -> None:
    path = tmp_path / "six.wav"
    audio.write(path, tone(48000, 0.1, 6), 48000, subtype="PCM_24")
    assert audio.info(path).channels == 6 and audio.info(path).format == "WAVEX"


def test_write_clips_integer_output_but_not_float(tmp_path: Path) -> None:
    x = np.array([[1.5, -2.0, 0.25]], np.float32)
    audio.write(tmp_path / "i.wav", x, 8000, subtype="PCM_16")
    audio.write(tmp_path / "f.wav", x, 8000, subtype="FLOAT")
    np.testing.assert_allclose(audio.read(tmp_path / "i.wav")[0][0], [32767 / 32768, -1, 0.25])
    np.testing.assert_array_equal(audio.read(tmp_path / "f.wav")[0], x)


def test_writer_is_atomic_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    with pytest.raises(RuntimeError), audio.AudioWriter(path, 44100, 2) as w:
        w.write(tone(44100, 0.1, 2))
        raise RuntimeError("crash in the middle")
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file


def test_writer_keeps_existing_output_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "out.flac"
    audio.write(path, tone(44100, 0.1, 1), 44100)
    before = path.read_bytes()
    with pytest.raises(RuntimeError), audio.AudioWriter(path, 44100, 1, overwrite=True) as w:
        w.write(np.zeros((1, 100), np.float32))
        raise RuntimeError("crash")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.flac"]


def test_no_partial_file_is_visible_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    with audio.AudioWriter(path, 8000, 1) as w:
        w.write(np.zeros((1, 800), np.float32))
        assert not path.exists()
    assert path.exists() and audio.info(path).frames == 800


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    audio.write(path, tone(8000, 0.1, 1), 8000)
    with pytest.raises(OutputExistsError, match="--force"):
        audio.write(path, tone(8000, 0.1, 1), 8000)
    audio.write(path, np.zeros((1, 10), np.float32), 8000, overwrite=True)
    assert audio.info(path).frames == 10


@pytest.mark.parametrize("name, subtype, match", [
    ("x.mp3", "16", "upband writes .wav or .flac"),
    ("x.flac", "32f", "FLAC stores 16- or 24-bit"),
    ("x.wav", "12", "unsupported output subtype"),
])
def test_bad_outputs(tmp_path: Path, name: str, subtype: str, match: str) -> None:
    with pytest.raises(UnsupportedFormatError, match=match):
        audio.write(tmp_path / name, tone(8000, 0.1, 1), 8000, subtype=subtype)
    assert list(tmp_path.iterdir()) == []


def test_tpdf_dither_has_triangular_statistics() -> None:
    x = np.zeros((1, 200_000), np.float32)
    d = audio.tpdf_dither(x, 16, np.random.default_rng(0)) - x
    lsb = 2.0 ** -15
    assert np.max(np.abs(d)) <= lsb
    assert np.std(d) == pytest.approx(lsb / np.sqrt(6), rel=0.02)
    assert abs(np.mean(d)) < lsb * 0.01


def test_written_16_bit_with_dither_is_unbiased(tmp_path: Path) -> None:
    # a sine of 1/3 LSB: plain 16-bit rounding distorts it (regression slope far from 1), with
    # TPDF dither the quantised file reproduces it on average (slope 1) plus white noise
    x = (1e-5 * np.sin(2 * np.pi * 1000 * np.arange(48000) / 48000))[None].astype(np.float32)
    audio.write(tmp_path / "plain.wav", x, 48000, subtype="PCM_16")
    audio.write(tmp_path / "dith.wav", x, 48000, subtype="PCM_16", dither=True)

    def slope(path: Path) -> float:
        y = audio.read(path)[0][0].astype(np.float64)
        return float(np.dot(y, x[0]) / np.dot(x[0], x[0]))

    assert abs(slope(tmp_path / "plain.wav") - 1) > 0.3
    assert slope(tmp_path / "dith.wav") == pytest.approx(1.0, abs=0.1)


# ---------------------------------------------------------------------------------------------
# resampling and channels
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sr_in, sr_out", [(44100, 48000), (48000, 44100), (8000, 44100),
                                           (192000, 44100), (22050, 16000), (44100, 44100)])
@pytest.mark.parametrize("n", [1, 777, 44103])
def test_resample_exact_length(sr_in: int, sr_out: int, n: int) -> None:
    x = np.zeros((2, n), np.float32)
    y = audio.resample(x, sr_in, sr_out)
    assert y.shape == (2, audio.resampled_length(n, sr_in, sr_out))
    assert y.shape[1] == round(n * sr_out / sr_in)


def test_resample_keeps_passband_and_timing() -> None:
    x = tone(44100, 1.0, 2, 1000.0)
    y = audio.resample(x, 44100, 48000)
    ref = tone(48000, 1.0, 2, 1000.0)
    mid = slice(4800, -4800)
    assert np.max(np.abs(y[:, mid] - ref[:, mid])) < 1e-3


def test_resample_rejects_aliases() -> None:
    x = tone(44100, 1.0, 1, 20000.0)  # above the 8 kHz Nyquist of 16 kHz
    y = audio.resample(x, 44100, 16000)
    assert 20 * np.log10(np.max(np.abs(y[:, 1600:-1600])) / 0.5) < -100


def test_resample_does_not_modify_input_and_handles_batches() -> None:
    x = np.random.default_rng(0).standard_normal((3, 2, 1000)).astype(np.float32)
    copy = x.copy()
    y = audio.resample(x, 16000, 44100)
    np.testing.assert_array_equal(x, copy)
    assert y.shape == (3, 2, 2756)
    np.testing.assert_allclose(y[1], audio.resample(x[1], 16000, 44100), atol=1e-6)


@pytest.mark.parametrize("sr_in, sr_out", [(44100, 48000), (48000, 16000), (16000, 44100)])
def test_stream_resampler_equals_one_pass(sr_in: int, sr_out: int) -> None:
    x = np.random.default_rng(2).standard_normal((2, 50_003)).astype(np.float32)
    stream = audio.StreamResampler(sr_in, sr_out, 2)
    sizes = [1, 4096, 9999, 17, 20000]
    pieces, start = [], 0
    for size in sizes:
        pieces.append(stream.process(x[:, start:start + size]))
        start += size
    pieces.append(stream.process(x[:, start:], last=True))
    y = np.concatenate(pieces, axis=1)
    one = audio.resample(x, sr_in, sr_out)
    assert y.shape == one.shape
    np.testing.assert_allclose(y, one, atol=1e-5)


def test_to_channels() -> None:
    x = np.stack([np.ones(4), -np.ones(4)]).astype(np.float32)
    np.testing.assert_array_equal(audio.to_channels(x, 1), np.zeros((1, 4)))
    np.testing.assert_array_equal(audio.to_channels(x[:1], 2), np.ones((2, 4)))
    with pytest.raises(ValueError, match="cannot convert 2 channels to 6"):
        audio.to_channels(x, 6)


def test_every_room_name_is_reachable_from_the_package() -> None:
    rooms = (audio.header, audio.reading, audio.writing, audio.resampling, audio.channels)
    for module in rooms:
        public = [n for n, v in vars(module).items() if not n.startswith("_")
                  and (inspect.isfunction(v) or inspect.isclass(v))
                  and v.__module__ == module.__name__]
        public += [n for n in vars(module) if n.isupper() and n[0] != "_"]
        assert public
        for name in public:
            assert getattr(audio, name) is getattr(module, name), name
            assert name in audio.__all__, name
