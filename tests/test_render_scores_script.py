"""scripts/render_scores.py's soundfont lookup on a fresh machine: the Debian package already
downloaded into an empty cache (a real ``.deb`` made with ``dpkg-deb --build``; no network, no
apt), unpacked into folders that do not exist yet; and a SIGTERM that leaves no FluidSynth and
no temporary folder behind."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "render_scores.py"

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_scores_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _deb(script: ModuleType, where: Path, payload: dict[str, bytes]) -> Path:
    """A ``.deb`` of the soundfont package holding ``payload`` (path in package → bytes)."""
    root = where / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {script.SOUNDFONT_PACKAGE}\nVersion: 0.2.1-1\nArchitecture: all\n"
        "Maintainer: test <test@example.org>\nDescription: test package\n")
    for rel, data in payload.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    deb = where / f"{script.SOUNDFONT_PACKAGE}_0.2.1-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


@needs_dpkg
def test_soundfont_is_unpacked_into_a_cache_with_no_folders_yet(script: ModuleType,
                                                                 tmp_path: Path) -> None:
    cache = tmp_path / "fresh" / "debs"
    cache.mkdir(parents=True)
    _deb(script, cache, {script.SOUNDFONT_PATH: b"sf2 bytes"})
    found = script.soundfont_path(cache, None)
    assert found == cache / "unpacked" / script.SOUNDFONT_PACKAGE / script.SOUNDFONT_PATH
    assert found.read_bytes() == b"sf2 bytes"
    # a second call finds the unpacked tree and does not unpack again
    (cache / f"{script.SOUNDFONT_PACKAGE}_0.2.1-1_all.deb").unlink()
    assert script.soundfont_path(cache, None) == found


@needs_dpkg
def test_a_package_without_the_soundfont_is_one_clear_error(script: ModuleType,
                                                            tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    cache = tmp_path / "debs"
    cache.mkdir()
    _deb(script, cache, {"usr/share/doc/readme.txt": b"no soundfont here"})
    code = script.main(["--out", str(tmp_path / "out"), "--cache", str(cache)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and script.SOUNDFONT_PATH in err[0]
    assert not (tmp_path / "out").exists()


def test_sigterm_stops_fluidsynth_and_removes_the_temporary_folder(tmp_path: Path) -> None:
    # a stand-in fluidsynth that writes its PID and then never ends; the script, told to stop
    # with SIGTERM (kill PID) while it renders, kills it and leaves no temporary folder
    bin_dir, scratch = tmp_path / "bin", tmp_path / "scratch"
    bin_dir.mkdir()
    scratch.mkdir()
    fake = bin_dir / "fluidsynth"
    fake.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\nexec sleep 300\n")
    fake.chmod(0o755)
    child = f"""
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {str(SCRIPT.parent)!r})
import render_scores as s
s.stop_on_sigterm()
with tempfile.TemporaryDirectory(dir={str(scratch)!r}) as tmp:
    s.render(Path(tmp) / "piece.mid", Path(tmp) / "font.sf2", Path(tmp) / "piece.wav", 600.0)
"""
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen([sys.executable, "-c", child], env=env, stderr=subprocess.PIPE)
    for _ in range(300):  # the stand-in has started (imports take a few seconds)
        if (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip():
            break
        time.sleep(0.05)
    pid = int((tmp_path / "pid").read_text())
    assert len(list(scratch.iterdir())) == 1  # the piece's temporary folder
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # fluidsynth is gone
    assert list(scratch.iterdir()) == []
