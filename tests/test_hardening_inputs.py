"""Issue 14: what a hostile tester tried on inputs, names and options -- no file lost or
doubled, no write outside ``-o``, a one-line error instead of an "internal error"."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import lameenc
import numpy as np
import pytest
import soundfile as sf

from upband import audio
from upband.audio import header
from upband.cli import main
from upband.enhancement import UNITTEST_MODEL, enhance, plan_outputs
from upband.enhancement import files as files_module
from upband.errors import SpecError

SR = 44100
RUN = ["--model", UNITTEST_MODEL, "--device", "cpu", "-q"]


def noise(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((2, int(seconds * sr)))
            ).astype(np.float32)


def truncated_mp3(path: Path, seconds: float = 12.0, claimed_frames: int = 7000) -> None:
    """LAME MP3 whose first frame is a Xing header claiming ``claimed_frames`` frames (183 s),
    cut to ``seconds`` of audio: what a download that stopped early looks like."""
    enc = lameenc.Encoder()
    enc.set_bit_rate(128)
    enc.set_in_sample_rate(SR)
    enc.set_channels(2)
    enc.set_quality(7)
    pcm = (noise(seconds).T * 32767).astype(np.int16)
    data = enc.encode(pcm.tobytes()) + enc.flush()
    length = 144 * 128000 // SR + ((data[2] >> 1) & 1)
    frame = bytearray(data[:length])
    frame[4:] = bytes(length - 4)
    frame[36:48] = b"Xing" + struct.pack(">II", 1, claimed_frames)
    path.write_bytes(bytes(frame) + data)


def test_truncated_mp3_is_enhanced_with_a_warning_and_the_batch_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    truncated_mp3(folder / "cut.mp3")
    audio.write(folder / "ok.wav", noise(2.0), SR)
    claimed = audio.info(folder / "cut.mp3").duration
    assert claimed > 180  # the header promises three minutes
    assert main(["info", str(folder / "cut.mp3")]) == 0
    assert "band-limited" in capsys.readouterr().out
    report = tmp_path / "r.json"
    assert main(["enhance", str(folder), "-o", str(tmp_path / "out"), "--report", str(report),
                 *RUN[:-1]]) == 0
    out = capsys.readouterr().out
    assert "warning: the file ends early" in out and "0 failed" in out
    rows = {Path(r["input"]).name: r for r in json.loads(report.read_text())}
    assert rows["ok.wav"]["status"] == "passthrough"
    cut = rows["cut.mp3"]
    assert cut["status"] == "enhanced" and 11.5 < cut["duration_s"] < 12.5
    assert "truncated" in cut["warnings"][0]
    assert sf.info(str(tmp_path / "out" / "cut.upband.flac")).duration == pytest.approx(
        cut["duration_s"], abs=0.05)


def test_an_unexpected_error_fails_one_file_not_the_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.wav", "b.wav", "c.wav"):
        audio.write(tmp_path / name, noise(1.0), SR)
    real = files_module.enhance_file

    def flaky(src: Path, dst: Path, *args: object, **kwargs: object) -> object:
        if src.name == "a.wav":
            raise OSError(28, "No space left on device", str(dst))
        if src.name == "b.wav":
            raise RuntimeError("a bug")
        return real(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files_module, "enhance_file", flaky)
    code = main(["enhance", str(tmp_path), "-o", str(tmp_path / "out"), *RUN])
    err = capsys.readouterr().err
    assert code == 1
    assert "a.upband.wav: No space left on device" in err
    assert "b.wav: internal error: RuntimeError: a bug" in err
    assert "1 passed through" in err and "2 failed" in err
    assert (tmp_path / "out" / "c.upband.wav").exists()


def test_unreadable_input_is_called_that(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    path = tmp_path / "locked.wav"
    audio.write(path, noise(0.5), SR)

    def denied(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    err = header._open_error(path, RuntimeError("Error opening: System error."))
    assert "permission denied" in str(err) and "corrupt" not in str(err)


def test_colliding_outputs_get_their_own_names(tmp_path: Path) -> None:
    for name in ("song.mp3", "song.flac", "other.wav"):
        (tmp_path / name).write_bytes(b"x")
    pairs = dict(plan_outputs([tmp_path], tmp_path / "out", recursive=False))
    assert pairs[tmp_path / "song.mp3"].name == "song.mp3.upband.flac"
    assert pairs[tmp_path / "song.flac"].name == "song.flac.upband.flac"
    assert pairs[tmp_path / "other.wav"].name == "other.upband.wav"  # no collision: unchanged
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.wav").write_bytes(b"x")
    with pytest.raises(SpecError, match="would both be written to"):
        plan_outputs([tmp_path / "a" / "x.wav", tmp_path / "b" / "x.wav"], tmp_path / "o",
                     recursive=False)
    # their common folder, searched: its tree is mirrored, nothing collides
    pairs = dict(plan_outputs([tmp_path], tmp_path / "o", recursive=True))
    assert pairs[tmp_path / "a" / "x.wav"] == tmp_path / "o" / "a" / "x.upband.wav"
    assert pairs[tmp_path / "b" / "x.wav"] == tmp_path / "o" / "b" / "x.upband.wav"


def test_reruns_leave_upband_outputs_and_the_output_folder_alone(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"x")
    (tmp_path / "x.upband.wav").write_bytes(b"x")  # a previous run without -o
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "y.flac").write_bytes(b"x")  # -o inside the input tree
    (tmp_path / "tune.m4a").write_bytes(b"x")  # not readable: planned, fails with its reason
    found = [src.name for src, _ in plan_outputs([tmp_path], tmp_path / "out", recursive=True)]
    assert found == ["tune.m4a", "x.wav"]
    found = [src.name for src, _ in plan_outputs([tmp_path], None, recursive=True)]
    assert "x.upband.wav" not in found and "y.flac" in found
    # a template without text of its own names outputs like inputs: nothing is left out
    found = [src.name for src, _ in plan_outputs([tmp_path], tmp_path / "o2", recursive=False,
                                                 template="{stem}.{ext}")]
    assert found == ["tune.m4a", "x.upband.wav", "x.wav"]


def test_an_m4a_in_a_folder_is_reported_not_ignored(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    audio.write(tmp_path / "ok.wav", noise(0.5), SR)
    (tmp_path / "tune.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    assert main(["enhance", str(tmp_path), "-o", str(tmp_path / "out"), *RUN]) == 1
    err = capsys.readouterr().err
    assert "tune.m4a: MP4/M4A (AAC or ALAC) is not supported" in err and "1 failed" in err


@pytest.mark.parametrize("template, message", [
    ("../x_{stem}.{ext}", "must give a file name"),
    ("../../../../x{stem}", "must give a file name"),
    ("/tmp/{stem}.{ext}", "must give a file name"),
    ("{stem}/x.{ext}", "must give a file name"),
    ("{foo}_{stem}.{ext}", "unknown field {foo}"),
    ("x.{ext}", "must contain {stem}"),
    ("{stem", "--filename"),
])
def test_templates_that_would_write_outside_o_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str, message: str) -> None:
    audio.write(tmp_path / "a.wav", noise(0.2), SR)
    assert main(["enhance", str(tmp_path), "-o", str(tmp_path / "out"), "--filename", template,
                 *RUN]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "internal error" not in err
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == \
        ["a.wav"]


@pytest.mark.parametrize("argv, message", [
    (["-o", "{tmp}/x.mp3"], "upband writes .wav or .flac files, not .mp3"),
    (["--sample-rate", "0"], "must be 2000-192000 Hz, got 0"),
    (["--sample-rate", "-5"], "must be 2000-192000 Hz, got -5"),
    (["--sample-rate", "10000000"], "must be 2000-192000 Hz, got 10000000"),
])
def test_bad_outputs_and_rates_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            argv: list[str], message: str) -> None:
    audio.write(tmp_path / "a.wav", noise(0.2), SR)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["enhance", str(tmp_path / "a.wav"), *argv, *RUN]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.mp3").exists()


@pytest.mark.parametrize("rate", [4000, 2667])
def test_kuleshov_low_rate_inputs_are_enhanced(tmp_path: Path, rate: int) -> None:
    audio.write(tmp_path / "low.wav", noise(1.0, rate), rate, subtype="PCM_16")
    assert main(["enhance", str(tmp_path / "low.wav"), "-o", str(tmp_path / "out.wav"),
                 *RUN]) == 0
    info = audio.info(tmp_path / "out.wav")
    assert info.sample_rate == SR and info.frames == audio.resampled_length(rate, rate, SR)


def test_api_refuses_transposed_empty_and_rateless_audio() -> None:
    x = noise(0.5)
    with pytest.raises(SpecError, match=r"upband takes \[C, T\]"):
        enhance(x.T, SR, model=UNITTEST_MODEL, device="cpu")  # what soundfile.read returns
    with pytest.raises(SpecError, match="holds no samples"):
        enhance(np.zeros((2, 0), np.float32), SR, model=UNITTEST_MODEL, device="cpu")
    for rate in (0, -1, 44100.5):
        with pytest.raises(SpecError, match="sample_rate must be"):
            enhance(x, rate, model=UNITTEST_MODEL, device="cpu")  # type: ignore[arg-type]


def test_info_and_enhance_give_one_answer(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The same detection (excerpts of the same 30 s) for both commands, on a file longer
    than what the detector reads."""
    x = noise(45.0)
    x[:, SR * 20:] *= 0.01  # the excerpts must be the same ones for the answers to agree
    path = tmp_path / "long.flac"
    audio.write(path, x, SR)
    assert main(["info", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    record = printed[0] if isinstance(printed, list) else printed
    report = tmp_path / "r.json"
    assert main(["enhance", str(path), "-o", str(tmp_path / "o.flac"), "--report", str(report),
                 *RUN]) == 0
    assert json.loads(report.read_text())[0]["bandwidth"] == record["bandwidth"]


@pytest.mark.parametrize("order, warned", [("import torch, upband", True),
                                           ("import upband, torch", False)])
def test_importing_torch_first_is_told_how_to_get_the_speed_back(order: str, warned: bool
                                                                 ) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = subprocess.run([sys.executable, "-c", order], env=env, capture_output=True,
                         text=True, check=True)
    assert ("OMP_WAIT_POLICY=PASSIVE" in run.stderr) == warned


def test_a_full_disk_is_named_not_an_internal_error(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """libsndfile reports a failed write as "System error."; the writer says what it means
    and leaves no temporary file."""
    writer = audio.AudioWriter(tmp_path / "o.wav", SR, 2)

    class Failing:
        def write(self, data: np.ndarray) -> None:
            raise sf.LibsndfileError(2, "System error.")

        def close(self) -> None:
            pass

    writer._f = Failing()  # type: ignore[assignment]
    monkeypatch.setattr("shutil.disk_usage", lambda path: type("U", (), {"free": 0})())
    with pytest.raises(OSError, match="No space left on device") as err:
        writer.write(noise(0.1))
    assert err.value.filename == str(tmp_path / "o.wav")
    writer.abort()
    assert list(tmp_path.iterdir()) == []
