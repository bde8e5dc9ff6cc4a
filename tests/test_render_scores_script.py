"""scripts/render_scores.py's soundfont lookup on a fresh machine: the Debian package already
downloaded into an empty cache (a real ``.deb`` made with ``dpkg-deb --build``; no network, no
apt), unpacked into folders that do not exist yet."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "render_scores.py"

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


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
