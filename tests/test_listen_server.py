"""upband listen's server: items and versions, audio and spectrograms with the detected cutoff,
the test API (participants, resume, rows in SQLite), and safety -- only the given files are
served (``../`` and symbolic links refused), the Host check, the access key with --host, and
one-line errors for bad test files."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from test_listen_support import SR, make_test, tone
from upband import audio
from upband.cli import main
from upband.degrade import lowpass
from upband.listen.catalog import from_paths
from upband.listen.server import access, make_app, start

werkzeug_test = pytest.importorskip("werkzeug.test", reason="the listen extra is not installed")


def client(*inputs: Path, **kw: Any) -> Any:
    """A Werkzeug test client of the app serving ``inputs``."""
    return werkzeug_test.Client(make_app(list(inputs), **kw).app)


@pytest.fixture
def music(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    (root / "sub").mkdir(parents=True)
    x = tone(1.0)
    audio.write(root / "song.wav", x, SR)
    audio.write(root / "song_lp8k.flac", lowpass(x, SR, 8000, "cheby1:8"), SR, subtype="PCM_24")
    audio.write(root / "sub" / "other.wav", x[:, : SR // 2], SR)
    return root


def test_files_are_grouped_into_items_with_versions(music: Path, tmp_path: Path) -> None:
    restored = tmp_path / "restored"
    restored.mkdir()
    audio.write(restored / "song.upband.flac", tone(1.0), SR)
    cat = from_paths([music, restored])
    assert [(it.title, it.names()) for it in cat.items] == [
        ("song", ["song.wav", "song_lp8k.flac", "song.upband.flac"]),
        ("sub/other", ["other.wav"])]
    c = client(music)
    assert c.get("/api/catalog").json["items"][0]["versions"] == ["song.wav", "song_lp8k.flac"]


def test_audio_spectrogram_and_measurements(music: Path) -> None:
    c = client(music)
    item = c.get("/api/item/0").json
    orig, lp = item["versions"]
    assert orig["cutoff_hz"] == SR / 2 and 7900 < lp["cutoff_hz"] < 9500
    assert orig["loudness_lufs"] > lp["loudness_lufs"] > orig["loudness_lufs"] - 3
    r = c.get("/api/audio/0/1")
    assert r.status_code == 200 and r.mimetype == "audio/wav"
    y, sr = audio.decode_bytes(r.data)
    x, _ = audio.read(music / "song_lp8k.flac")
    assert sr == SR and np.array_equal(y, x)  # float WAV: exactly what was decoded
    spec = c.get("/api/spectrogram/0/1").json
    data = np.frombuffer(__import__("base64").b64decode(spec["data"]), np.uint8)
    rows = data.reshape(spec["rows"], spec["frames"]).astype(float).mean(axis=1)
    top = int(spec["rows"] * 12000 / (SR / 2))
    assert rows[:top // 2].mean() > rows[top:].mean() + 60  # the band above 12 kHz is empty
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    r = c.get("/")
    assert r.status_code == 200 and b'src="/static/browse.js"' in r.data
    assert not re.search(rb'(src|href)="(https?:)?//', r.data)  # nothing from elsewhere


@pytest.mark.parametrize("url", [
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fpyproject.toml", "/api/audio/0/../../etc/passwd", "/api/audio/0/2",
    "/api/audio/9/0", "/api/audio/-1/0", "/etc/passwd", "/static/app.py", "/static/",
    "/api/spectrogram/0/7", "/api/test/x/session/y"])
def test_no_url_reaches_another_file(music: Path, url: str) -> None:
    r = client(music).get(url)
    assert r.status_code == 404 and b"root:" not in r.data and b"[project]" not in r.data


def test_symbolic_links_out_of_the_given_folder_are_refused(music: Path, tmp_path: Path
                                                            ) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    audio.write(secret / "private.wav", tone(0.5), SR)
    (music / "song_leak.wav").symlink_to(secret / "private.wav")
    (music / "linked").symlink_to(secret, target_is_directory=True)
    served = make_app([music])
    names = [n for it in served.catalog.items for n in it.names()]
    assert "song_leak.wav" not in names and "private.wav" not in names
    assert any("song_leak.wav" in n and "outside" in n for n in served.notes)
    # a link inside the folder that is changed later to lead out is refused when served
    inside = music / "song_late.wav"
    audio.write(inside, tone(0.5), SR)
    served = make_app([music])
    c = werkzeug_test.Client(served.app)
    index = served.catalog.items[0].names().index("song_late.wav")
    assert c.get(f"/api/audio/0/{index}").status_code == 200
    inside.unlink()
    inside.symlink_to(secret / "private.wav")
    assert c.get(f"/api/audio/0/{index}").status_code == 404


def test_test_files_cannot_name_paths_outside_their_folder(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    path = make_test(tmp_path / "t", items=1, seconds=0.3)
    audio.write(tmp_path / "outside.wav", tone(0.3), SR)
    (tmp_path / "t" / "stimuli" / "link.wav").symlink_to(tmp_path / "outside.wav")
    doc = json.loads(path.read_text())
    for bad, words in (("../outside.wav", "leads outside the test file's folder"),
                       ("stimuli/link.wav", "leads outside the test file's folder"),
                       (str(tmp_path / "outside.wav"), "must be relative"),
                       ("stimuli/nothing.wav", "no such file")):
        doc["items"][0]["versions"][1]["path"] = bad
        path.write_text(json.dumps(doc))
        code = main(["listen", str(path), "--no-browser"])
        err = capsys.readouterr().err
        assert code == 1 and words in err, err
        assert err.startswith("upband: error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("text", "words"), [
    ("{", "not valid JSON"),
    ('{"format": "other"}', "not an upband listening test"),
    ('{"format": "upband-listening-test", "version": 9, "items": []}',
     "format version 9 is not supported"),
    ('{"format": "upband-listening-test", "version": 1, "items": []}', "'items' is empty"),
    ('{"format": "upband-listening-test", "version": 1, "items": [{"id": "a/b", '
     '"versions": []}]}', "'id' 'a/b' must be letters"),
    ('{"format": "upband-listening-test", "version": 1, "items": [1]}', "must be a table"),
    ('{"format": "upband-listening-test", "version": 1, "items": [{"id": "a", '
     '"versions": [{"name": "r", "path": 3}]}]}', "'path' must be a string"),
    ('{"format": "upband-listening-test", "version": NaN}', "not valid JSON"),
])
def test_bad_test_files_are_one_line_errors(tmp_path: Path, text: str, words: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    code = main(["listen", str(path), "--no-browser"])
    err = capsys.readouterr().err
    assert code == 1 and words in err, err
    assert len(err.strip().splitlines()) == 1


def test_bad_tests_in_a_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for tests, words in (([{"name": "t", "design": "zz"}], "design 'zz' is not one of"),
                         ([{"name": "t", "design": "ab"}], "needs 'pairs'"),
                         ([{"name": "t", "design": "mushra", "versions": ["input"]}],
                          "the reference 'reference' must be among the versions"),
                         ([{"name": "t", "design": "mos", "versions": ["nope"]}],
                          "version(s) nope not in every item")):
        path = make_test(tmp_path / "t", items=1, seconds=0.3, tests=tests)
        code = main(["listen", str(path), "--no-browser"])
        err = capsys.readouterr().err
        assert code == 1 and words in err and len(err.strip().splitlines()) == 1, err
    toml = tmp_path / "t" / "test.toml"
    toml.write_text('format = "upband-listening-test"\nversion = 1\n[[items]]\nid = "a"\n'
                    '[[items.versions]]\nname = "r"\npath = "stimuli/item0/reference.flac"\n'
                    '[[tests]]\nname = "m"\ndesign = "mos"\n')
    served = make_app([toml])
    assert served.test is not None and served.test.tests[0].versions == ("r",)


def test_participants_resume_and_rows_land_in_sqlite(tmp_path: Path) -> None:
    path = make_test(tmp_path / "t", items=2, seconds=0.3)
    db = tmp_path / "r.sqlite"
    c = client(path, db=db)
    token = c.post("/api/test/mushra/start", json={}).json["token"]
    s = c.get(f"/api/test/mushra/session/{token}").json
    assert (s["position"], s["total"], s["done"]) == (0, 2, False)
    trial = s["trial"]
    assert trial["slots"] == list("ABCDE") and trial["reference"] is True
    shown = json.dumps(s)
    assert not any(v in shown for v in ("anchor", "input", "model", "stimuli", ".flac"))
    assert s["gains_db"]["ref"] == pytest.approx(-6.02) and min(s["gains_db"].values()) < -6
    ref = audio.decode_bytes(c.get(f"/api/test/mushra/audio/{token}/0/ref").data)[0]
    hidden = [i for i in range(5) if np.array_equal(audio.decode_bytes(
        c.get(f"/api/test/mushra/audio/{token}/0/{i}").data)[0], ref)]
    assert len(hidden) == 1  # the hidden reference is one of the slots
    assert c.get(f"/api/test/mushra/audio/{token}/0/9").status_code == 404
    bad = c.post(f"/api/test/mushra/answer/{token}",
                 json={"position": 0, "answers": {"ratings": [1, 2, 3]}})
    assert bad.status_code == 400 and "needs 5 ratings" in bad.json["error"]
    ok = c.post(f"/api/test/mushra/answer/{token}",
                json={"position": 0, "answers": {"ratings": [100, 10, 20, 30, 40]},
                      "elapsed_ms": 1234})
    assert ok.status_code == 200 and ok.json == {"saved": 5, "position": 1, "done": False}
    again = c.post(f"/api/test/mushra/answer/{token}",
                   json={"position": 0, "answers": {"ratings": [1, 1, 1, 1, 1]}})
    assert again.status_code == 409
    # a new client (a reload, another browser) with the same token resumes at trial 2
    c2 = client(path, db=db)
    assert c2.get(f"/api/test/mushra/session/{token}").json["position"] == 1
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT participant, trial, position, slot, value, elapsed_ms, time "
                           "FROM ratings ORDER BY slot").fetchall()
    assert [r[4] for r in rows] == [100, 10, 20, 30, 40]
    assert {r[0] for r in rows} == {token} and {r[5] for r in rows} == {1234}
    assert all(r[6].endswith("+00:00") for r in rows)
    assert c.get("/api/test/mushra/session/nobody").status_code == 404
    # the POST guards: JSON only, same origin only
    assert c.post(f"/api/test/mushra/answer/{token}", data="x").status_code == 400
    assert c.post("/api/test/mushra/start", json={},
                  headers={"Origin": "http://evil.example"}).status_code == 403


def test_access_key_and_host_checks(music: Path) -> None:
    served = make_app([music], key="s3cret-key")
    c = werkzeug_test.Client(served.app)
    assert c.get("/").status_code == 403
    assert c.get("/api/audio/0/0").status_code == 403
    assert c.get("/?key=wrong-key1").status_code == 403
    r = c.get("/?key=s3cret-key")
    assert r.status_code == 200 and "upband_listen_key=s3cret-key" in r.headers["Set-Cookie"]
    assert c.get("/api/audio/0/0").status_code == 200  # the cookie now carries the key
    assert access("127.0.0.1", None) is None and access("localhost", None) is None
    key = access("0.0.0.0", None)
    assert key is not None and len(key) >= 16
    with pytest.raises(Exception, match="at least 8"):
        access("0.0.0.0", "short")
    running = start(make_app([music]), background=True)
    try:
        url = running.url("/api/catalog")
        assert json.load(urllib.request.urlopen(url))["items"]
        req = urllib.request.Request(url, headers={"Host": f"attacker.example:{running.port}"})
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(req)
    finally:
        running.stop()


def _as_from_a_terminal() -> None:
    """In the child before exec: Ctrl-C's default action, as a terminal gives it (a job that
    a non-interactive shell put in the background, such as a CI script, inherits SIGINT
    ignored, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_the_command_serves_with_a_key_on_other_hosts_and_stops_on_ctrl_c(music: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "upband.cli", "listen", str(music), "--host",
                             "0.0.0.0", "--no-browser"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=_as_from_a_terminal)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"http://[^:]+:(\d+)/\?key=(\S+)", line)
        assert m, line
        base = f"http://127.0.0.1:{m.group(1)}"
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(f"{base}/api/catalog", timeout=10)
        r = urllib.request.urlopen(f"{base}/api/catalog?key={m.group(2)}", timeout=10)
        assert json.load(r)["items"][0]["title"] == "song"
    finally:
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "interrupted" in err


def test_command_line_errors(music: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    for argv, code, words in (
            ([], 2, "no inputs"),
            ([str(tmp_path / "missing")], 1, "no such file or folder"),
            ([str(tmp_path / "missing.json")], 1, "no such test file"),
            ([str(music), "--db", str(tmp_path / "x.sqlite")], 2, "--db is for"),
            ([str(music), "--port", "70000"], 2, "--port"),
            ([str(music), "--token", "short"], 2, "at least 8"),
            ([str(make_test(tmp_path / "t", items=1, seconds=0.2)), str(music)], 2,
             "one listening-test file alone")):
        got = main(["listen", *argv, "--no-browser"])
        err = capsys.readouterr().err
        assert got == code and words in err and len(err.strip().splitlines()) == 1, (argv, err)
