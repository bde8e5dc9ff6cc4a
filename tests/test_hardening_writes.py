"""Writes that survive signals, killed runs and concurrent batches: a temporary file left by a
killed process is removed by the next writer of the same output (never a live process's), a
write without overwrite never replaces a file that appeared meanwhile, and SIGTERM stops the
command line as Ctrl-C does."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal as scipy_signal

import upband.cli.info
from upband import audio
from upband.cli import main
from upband.errors import OutputExistsError
from upband.fsutil import (
    TEMP_SUFFIX,
    atomic_write_bytes,
    move_into_place,
    remove_stale_temps,
    temp_prefix,
)

SR = 44100


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX))


def _dead_pid() -> int:
    """The ID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    return proc.pid


def _noise(seconds: float, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal((channels, int(seconds * SR)))).astype(np.float32)


# --------------------------------------------------------------------------------------------
# temporary files of killed runs
# --------------------------------------------------------------------------------------------


def test_a_dead_process_temp_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    dst = tmp_path / "song.wav"
    dead = _dead_pid()
    stale = tmp_path / f"{temp_prefix(dst, dead)}ab12cd_9{TEMP_SUFFIX}"
    live = tmp_path / f"{temp_prefix(dst, os.getpid())}zz99yy88{TEMP_SUFFIX}"
    other = tmp_path / f"{temp_prefix(tmp_path / 'other.wav', dead)}ab12cd34{TEMP_SUFFIX}"
    longer = tmp_path / f"{temp_prefix(tmp_path / 'song.wav.1.flac', dead)}ab12cd34{TEMP_SUFFIX}"
    legacy = tmp_path / f".song.wav.k3j2h1g0{TEMP_SUFFIX}"  # no PID in the name: unknown owner
    for path in (stale, live, other, longer, legacy):
        path.write_bytes(b"x" * 1000)

    writer = audio.AudioWriter(dst, SR, 2, subtype="PCM_16")
    own = _temps(tmp_path)
    assert not stale.exists()
    assert live.exists() and other.exists() and longer.exists() and legacy.exists()
    assert live.read_bytes() == b"x" * 1000
    mine = [name for name in own if name.startswith(temp_prefix(dst))]
    assert len(mine) == 2 and live.name in mine  # the writer's own temp carries its PID too
    writer.write(_noise(0.1))
    writer.close()
    assert audio.info(dst).frames == int(0.1 * SR)
    assert _temps(tmp_path) == sorted([live.name, other.name, longer.name, legacy.name])


def test_remove_stale_temps_returns_what_it_removed(tmp_path: Path) -> None:
    dst = tmp_path / "a.flac"
    dead = _dead_pid()
    stale = tmp_path / f"{temp_prefix(dst, dead)}q1w2e3r4{TEMP_SUFFIX}"
    stale.write_bytes(b"")
    folder = tmp_path / f"{temp_prefix(dst, dead)}folder00{TEMP_SUFFIX}"
    folder.mkdir()  # only files are removed
    assert remove_stale_temps(dst) == [stale]
    assert remove_stale_temps(dst) == [] and folder.is_dir()
    assert remove_stale_temps(tmp_path / "missing-folder" / "x.wav") == []


def test_atomic_write_bytes_removes_stale_temps_and_names_its_own(tmp_path: Path) -> None:
    dst = tmp_path / "index.json"
    stale = tmp_path / f"{temp_prefix(dst, _dead_pid())}a1b2c3d4{TEMP_SUFFIX}"
    stale.write_bytes(b"partial")
    atomic_write_bytes(dst, b"{}\n")
    assert dst.read_bytes() == b"{}\n" and _temps(tmp_path) == []
    assert oct(dst.stat().st_mode & 0o777) == oct(0o644 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_two_writers_of_one_output_have_their_own_temps(tmp_path: Path) -> None:
    dst = tmp_path / "same.wav"
    first = audio.AudioWriter(dst, SR, 1, subtype="PCM_16")
    second = audio.AudioWriter(dst, SR, 1, subtype="PCM_16")
    assert len(_temps(tmp_path)) == 2
    first.abort()
    assert len(_temps(tmp_path)) == 1
    second.abort()
    assert _temps(tmp_path) == [] and not dst.exists()


def test_abort_on_keyboard_interrupt_removes_the_temp(tmp_path: Path) -> None:
    dst = tmp_path / "x.wav"
    with pytest.raises(KeyboardInterrupt), audio.AudioWriter(dst, SR, 2) as writer:
        writer.write(_noise(0.1))
        raise KeyboardInterrupt
    assert _temps(tmp_path) == [] and not dst.exists()


# --------------------------------------------------------------------------------------------
# no replacing a file that appeared meanwhile
# --------------------------------------------------------------------------------------------


def test_an_output_that_appears_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    dst = tmp_path / "out.wav"
    writer = audio.AudioWriter(dst, SR, 2, subtype="PCM_24", overwrite=False)
    writer.write(_noise(0.2))
    dst.write_bytes(b"the other batch's output")
    with pytest.raises(OutputExistsError, match="already exists"):
        writer.close()
    assert dst.read_bytes() == b"the other batch's output"
    assert _temps(tmp_path) == []
    writer.close()  # a second close does nothing
    assert dst.read_bytes() == b"the other batch's output"


def test_with_overwrite_the_output_that_appeared_is_replaced(tmp_path: Path) -> None:
    dst = tmp_path / "out.flac"
    block = _noise(0.2)
    writer = audio.AudioWriter(dst, SR, 2, subtype="PCM_16", overwrite=True)
    writer.write(block)
    dst.write_bytes(b"the other batch's output")
    writer.close()
    assert _temps(tmp_path) == []
    back, rate = sf.read(dst, dtype="float32", always_2d=True)
    assert rate == SR and back.shape == (block.shape[1], 2)
    np.testing.assert_allclose(back.T, block, atol=2.0 ** -15)


def test_write_encoded_refuses_an_existing_file(tmp_path: Path) -> None:
    dst = tmp_path / "x.opus"
    dst.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        audio.write_encoded(dst, _noise(0.1), 48000)
    assert dst.read_bytes() == b"keep"
    atomic_write_bytes(dst, b"new")
    assert dst.read_bytes() == b"new"
    with pytest.raises(OutputExistsError):
        atomic_write_bytes(dst, b"newer", overwrite=False)
    assert dst.read_bytes() == b"new" and _temps(tmp_path) == []


@pytest.mark.parametrize("links", [True, False])
def test_move_into_place_without_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           links: bool) -> None:
    if not links:  # a file system without hard links (FAT): an existence check, then a rename
        def no_link(src: object, dst: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_link)
    tmp, dst = tmp_path / "t", tmp_path / "d"
    tmp.write_bytes(b"mine")
    dst.write_bytes(b"theirs")
    with pytest.raises(OutputExistsError):
        move_into_place(tmp, dst, overwrite=False)
    assert dst.read_bytes() == b"theirs" and not tmp.exists()
    dst.unlink()
    tmp.write_bytes(b"mine")
    move_into_place(tmp, dst, overwrite=False)
    assert dst.read_bytes() == b"mine" and not tmp.exists()
    assert dst.stat().st_nlink == 1


# --------------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------------


def _send_and_wait(signum: int) -> int:
    """A stand-in command: signals its own process, then waits for the exception."""
    assert signal.getsignal(signum) != signal.SIG_DFL, "main() set no handler"
    os.kill(os.getpid(), signum)
    for _ in range(500):
        time.sleep(0.01)
    return 0


def test_sigterm_stops_main_in_process(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upband.cli.info, "run",
                        lambda args: _send_and_wait(signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    assert main(["info", "whatever.wav"]) == 143
    assert capsys.readouterr().err == "upband: interrupted (SIGTERM)\n"
    monkeypatch.setattr(upband.cli.info, "run", lambda args: _send_and_wait(signal.SIGHUP))
    if before[1] == signal.SIG_IGN:  # the tests run under nohup: SIGHUP stays ignored
        assert main(["info", "whatever.wav"]) == 0
        assert capsys.readouterr().err == ""
    else:
        assert main(["info", "whatever.wav"]) == 129
        assert capsys.readouterr().err == "upband: interrupted (SIGHUP)\n"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def test_ctrl_c_still_exits_130(capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt
    monkeypatch.setattr(upband.cli.info, "run", interrupted)
    assert main(["info", "whatever.wav"]) == 130
    assert capsys.readouterr().err == "upband: interrupted (SIGINT)\n"


def test_an_ignored_sighup_stays_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        monkeypatch.setattr(upband.cli.info, "run", lambda args: _send_and_wait(signal.SIGHUP))
        assert main(["info", "whatever.wav"]) == 0
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.fixture
def long_input(tmp_path: Path) -> Path:
    """Three minutes of stereo noise low-passed at 8 kHz: a file ``enhance`` does enhance."""
    sos = scipy_signal.butter(12, 8000, fs=SR, output="sos")
    noise = scipy_signal.sosfilt(sos, _noise(180.0), axis=-1).astype(np.float32)
    path = tmp_path / "in" / "long.wav"
    path.parent.mkdir()
    sf.write(path, noise.T, SR, subtype="PCM_16")
    return path


def test_sigterm_mid_file_leaves_no_temp_and_no_output(long_input: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "long.wav"
    proc = subprocess.Popen(
        [sys.executable, "-m", "upband.cli", "enhance", str(long_input), "-o", str(out),
         "--model", "upband_unittest", "--device", "cpu", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _temps(out_dir) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _temps(out_dir) and proc.poll() is None, "the output's temp never appeared"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert "interrupted" in err and err.strip().count("\n") == 0, err
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []
