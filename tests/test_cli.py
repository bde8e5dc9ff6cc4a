"""The command line: real commands on real files, and one-line errors for every bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from upband import __version__, audio
from upband.cli import main
from upband.errors import UpbandError

DATA = Path(__file__).parent / "data"
MUSIC = DATA / "loop_compus_3s.flac"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own exits (--version, usage errors)
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"upband {__version__}"


def test_info_reports_format_and_bandwidth(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    low = tmp_path / "low.wav"
    assert main(["degrade", str(MUSIC), "-o", str(low), "--filter", "ellip:8",
                 "--cutoff", "6000"]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "info", str(MUSIC), str(low))
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].endswith("44100 Hz, 2 ch, 0:03.000, FLAC/PCM_16; full band")
    assert "WAV/PCM_16; band-limited at 6." in lines[1]
    code, out, _ = run(capsys, "info", "--json", str(low))
    record = json.loads(out)[0]
    assert record["frames"] == 3 * 44100 and record["channels"] == 2
    assert 6000 < record["bandwidth"]["cutoff_hz"] < 6600


def test_degrade_then_metrics(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_path = tmp_path / "d.flac"
    code, out, _ = run(capsys, "degrade", str(MUSIC), "-o", str(out_path), "--filter",
                       "cheby1:6", "--cutoff", "11025")
    assert code == 0 and "lowpass cheby1:6,rp=0.05 @ 11025 Hz" in out
    assert audio.info(out_path).subtype == "PCM_16"
    code, out, _ = run(capsys, "metrics", str(MUSIC), str(out_path), "--cutoff", "11025",
                       "--json", "--no-visqol")
    values = json.loads(out)["metrics"]
    assert code == 0
    assert 5 < values["snr"] < 30 and values["lsd_db_high"] > values["lsd_db"] > 0
    assert values["snr_high"] < 3 < values["snr"]
    code, out, _ = run(capsys, "metrics", str(MUSIC), str(MUSIC), "--no-visqol")
    assert code == 0 and re.search(r"snr\s+\+inf dB\n", out)
    assert re.search(r"lsd_ssr\s+0\.0000\n", out) and re.search(r"lsd_db\s+0\.000 dB\n", out)


def test_metrics_aligns_delay_rate_and_length(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    x, sr = audio.read(MUSIC)
    delayed = np.concatenate([np.zeros((2, 300), np.float32), x], axis=1)
    audio.write(tmp_path / "delayed.wav", audio.resample(delayed, sr, 48000), 48000,
                subtype="FLOAT")
    code, out, _ = run(capsys, "metrics", str(MUSIC), str(tmp_path / "delayed.wav"), "--align",
                       "--json", "--no-visqol")
    result = json.loads(out)
    assert code == 0 and result["lag"] == 300
    assert result["metrics"]["snr"] > 40  # only the two resamplings differ


@pytest.mark.parametrize("how", [["--mp3", "64"], ["--opus", "48"], ["--downsample", "4"],
                                 ["--preset", "sulun-multi", "--seed", "3"]])
def test_degrade_modes(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                       how: list[str]) -> None:
    out_path = tmp_path / "x.wav"
    code, out, _ = run(capsys, "degrade", str(MUSIC), "-o", str(out_path), *how, "--json",
                       "--bit-depth", "24")
    assert code == 0
    assert json.loads(out)["degradation"]["type"] in ("lowpass", "codec", "decimate")
    i = audio.info(out_path)
    assert (i.frames, i.channels, i.subtype) == (3 * 44100, 2, "PCM_24")


def test_degrade_preset_is_deterministic_per_seed(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    draws = []
    for seed, name in ((5, "a.wav"), (5, "b.wav"), (6, "c.wav")):
        _, out, _ = run(capsys, "degrade", str(MUSIC), "-o", str(tmp_path / name), "--preset",
                        "versatile", "--seed", str(seed), "--json")
        draws.append(json.loads(out)["degradation"])
    assert draws[0] == draws[1] != draws[2]
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_presets_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "presets")
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert code == 0 and names == ["sulun-single", "sulun-multi", "sulun-unseen", "tdpr",
                                   "kuleshov-r2", "kuleshov-r4", "kuleshov-r6", "lattner-mp3",
                                   "lattner-mp3-16", "lattner-mp3-32", "lattner-mp3-64",
                                   "versatile", "versatile-codecs"]


def test_degrade_never_overwrites_without_force(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    out_path = tmp_path / "x.wav"
    out_path.write_bytes(b"precious")
    code, _, err = run(capsys, "degrade", str(MUSIC), "-o", str(out_path), "--mp3", "128")
    assert code == 2 and "already exists (use --force" in err
    assert out_path.read_bytes() == b"precious"
    code, _, _ = run(capsys, "degrade", str(MUSIC), "-o", str(out_path), "--mp3", "128", "-f")
    assert code == 0 and audio.info(out_path).frames == 3 * 44100


def test_degrade_refuses_its_own_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    copy = tmp_path / "in.flac"
    copy.write_bytes(MUSIC.read_bytes())
    code, _, err = run(capsys, "degrade", str(copy), "-o", str(copy), "--mp3", "64", "-f")
    assert code == 2 and "never overwrites its input" in err
    assert copy.read_bytes() == MUSIC.read_bytes()


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "zero-length", "undecodable",
                                  "truncated", "unsupported", "non-finite"])
@pytest.mark.parametrize("command", ["info", "degrade", "metrics"])
def test_every_bad_input_gives_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        bad_inputs: dict[str, tuple[Path, str]], kind: str,
                                        command: str) -> None:
    path, words = bad_inputs[kind]
    argv = {"info": ["info", str(path)],
            "degrade": ["degrade", str(path), "-o", str(tmp_path / "o.wav"), "--mp3", "64"],
            "metrics": ["metrics", str(MUSIC), str(path)]}[command]
    code, out, err = run(capsys, *argv)
    assert code == 1  # the exit-status rule: an input file that cannot be processed (was 2)
    assert err.count("\n") == 1 and err.startswith("upband: error: ") and words in err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "o.wav").exists()


def test_info_continues_after_a_bad_file(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    code, out, err = run(capsys, "info", str(tmp_path / "missing.wav"), str(MUSIC))
    # the exit-status rule: 1 when a file could not be processed (was 2, unlike enhance's 1)
    assert code == 1 and "no such file" in err and "loop_compus_3s.flac: 44100 Hz" in out


@pytest.mark.parametrize("argv, words", [
    (["degrade", "x.wav", "-o", "y.wav", "--filter", "butter:6"], "--filter needs --cutoff"),
    (["degrade", "x.wav", "-o", "y.wav"], "one of the arguments"),
    (["degrade", "IN", "-o", "y.wav", "--filter", "cheby9:6", "--cutoff", "1000"],
     "unknown filter family 'cheby9'"),
    (["degrade", "IN", "-o", "y.mp3", "--mp3", "64"], "upband writes .wav or .flac"),
    (["degrade", "IN", "-o", "y.wav", "--mp3", "100"], "MP3 bitrate must be one of"),
    (["degrade", "IN", "-o", "y.wav", "--preset", "nope"], "unknown degradation preset"),
    (["degrade", "IN", "-o", "y.wav", "--filter", "butter:6", "--cutoff", "30000"],
     "cutoff must be a frequency"),
    (["metrics", "IN", "IN", "--cutoff", "-5"], "--cutoff must lie between"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_options_give_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                   argv: list[str], words: str) -> None:
    argv = [str(MUSIC) if a == "IN" else str(tmp_path / a) if a.startswith("y.") else a
            for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_console_script_runs() -> None:
    exe = Path(sys.executable).with_name("upband")
    result = subprocess.run([str(exe), "info", str(MUSIC), "--no-detect"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip().endswith("FLAC/PCM_16")


def test_models_listing(capsys: pytest.CaptureFixture[str]) -> None:
    from upband.models import MODELS

    code, out, _ = run(capsys, "models")
    rows = {line.split()[0]: line for line in out.splitlines()[1:len(MODELS) + 1]}
    assert code == 0 and list(rows) == list(MODELS)
    assert "3,479,872" in rows["arunet-s"] and "56,424,324" in rows["sulun-unet"]
    assert "pretrained" in out
    code, out, _ = run(capsys, "models", "--json")
    listing = json.loads(out)
    assert [a["name"] for a in listing["architectures"]] == list(MODELS)
    assert listing["architectures"][list(MODELS).index("arunet-s")]["parameters"] == 3_479_872
    assert all(p["sha256"] and p["file"].endswith(".safetensors") for p in listing["pretrained"])


def test_top_level_api_is_lazy() -> None:
    code = ("import sys, upband; assert 'torch' not in sys.modules; "
            "from upband.enhancement import enhance; assert upband.enhance is enhance; "
            "assert upband.enhance_file.__name__ == 'enhance_file'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_corpus_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "music"
    src.mkdir()
    x, sr = audio.read(MUSIC)
    for i in range(6):
        audio.write(src / f"song{i}.flac", np.roll(x, 4410 * i, axis=1), sr)
    audio.write(src / "dull.wav", x - 0.0, 22050)  # 22.05 kHz: below the 16 kHz requirement
    (src / "notes.txt").write_text("not audio")
    corpus = tmp_path / "corpus"
    code, out, _ = run(capsys, "corpus", "build", f"{src}::CC0-1.0", "-o", str(corpus),
                       "--splits", "0.5,0.25,0.25", "-j", "1", "-q")
    assert code == 0 and "low-cutoff 1" in out
    code, out, _ = run(capsys, "corpus", "info", str(corpus), "--json")
    info = json.loads(out)
    assert sum(s["files"] for s in info["splits"].values()) == 6 and info["bad_shards"] == []
    assert info["licences"] == {"CC0-1.0": 6} and info["skipped"] == {"low-cutoff": 1}
    assert info["splits"]["train"]["frames"] == 132300 * info["splits"]["train"]["files"]
    code, out, _ = run(capsys, "corpus", "pack", str(corpus), "-o", str(tmp_path / "packed"),
                       "--max-mib", "0.2", "-q")
    packed = sorted((tmp_path / "packed" / "shards").iterdir())
    assert code == 0 and len(packed) >= 3 and all(p.stat().st_size <= 0.2 * 2**20 for p in packed)
    code, out, _ = run(capsys, "corpus", "unpack", str(tmp_path / "packed"), "-o",
                       str(tmp_path / "back"), "-q")
    assert code == 0 and out.startswith(f"{tmp_path / 'back'}: npy corpus")
    code, out, _ = run(capsys, "corpus", "info", str(tmp_path / "back"), "--json")
    assert json.loads(out)["splits"] == info["splits"]  # same files, same lengths
    code, out, _ = run(capsys, "corpus", "info", str(tmp_path / "back"), "--verify")
    assert code == 0 and "all match their sha256" in out
    code, _, err = run(capsys, "corpus", "info", str(tmp_path / "nothing"))
    # the exit-status rule: a missing input is 1 (was 2)
    assert code == 1 and err.count("\n") == 1 and "no such corpus folder" in err


def test_train_resume_and_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    recipe = Path(__file__).parents[1] / "configs" / "arunet-s.toml"
    tiny = ["model.kwargs={widths=[8, 8], kernels=[5, 3]}", "train.batch_size=2",
            "data.crop_samples=4096", "validation.every=2", "checkpoint.every=2",
            "validation.max_files=1", "validation.seconds=1.0"]
    run_dir = tmp_path / "run"
    code, out, _ = run(capsys, "train", str(recipe), "train.max_steps=2", *tiny, "--run-dir",
                       str(run_dir), "-q")
    assert code == 0 and (run_dir / "best.safetensors").exists()
    # overrides may also follow the options, as in the docstring's ``RUN --resume KEY=VALUE``
    code, _, _ = run(capsys, "train", str(recipe), "--run-dir", str(run_dir), "--resume",
                     "train.max_steps=4", *tiny, "-q")
    steps = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()]
    assert code == 0 and steps == ["step", "0", "2", "4"]
    code, out, _ = run(capsys, "plot", str(run_dir))
    png = Path(out.strip())
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    code, _, err = run(capsys, "train", str(recipe), "--resume", "x.y=1", "--bogus")
    assert code == 2 and "unrecognized arguments: x.y=1 --bogus" in err
    code, _, err = run(capsys, "train", str(recipe), "optim.lrr=3", "--run-dir",
                       str(tmp_path / "other"))
    assert code == 2 and "did you mean 'optim.lr'" in err and err.count("\n") == 1


# --------------------------------------------------------------------------------------------
# the exit-status rule: 0 all done, 1 an input file could not be processed, 2 a bad command line
# --------------------------------------------------------------------------------------------

#: Per command: a command line that works on IN (writing OUT), and options that make it wrong.
RULE_CASES = {
    "enhance": (["enhance", "IN", "-o", "OUT", "--model", "upband_unittest", "-q"],
                ["--chunk-seconds", "0"]),
    "info": (["info", "IN"], ["--no-such-option"]),
    "degrade": (["degrade", "IN", "-o", "OUT", "--mp3", "64"], ["--bit-depth", "12"]),
    "metrics": (["metrics", str(MUSIC), "IN", "--no-visqol"], ["--cutoff", "0"]),
}


@pytest.mark.parametrize("command", list(RULE_CASES))
@pytest.mark.parametrize("case, expected", [("done", 0), ("missing", 1), ("bad-option", 2)])
def test_exit_status_rule(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str,
                          case: str, expected: int) -> None:
    argv, bad = RULE_CASES[command]
    src = tmp_path / "missing.wav" if case == "missing" else MUSIC
    out_path = tmp_path / "out.wav"
    argv = [str(src) if a == "IN" else str(out_path) if a == "OUT" else a for a in argv]
    code, _, err = run(capsys, *argv, *(bad if case == "bad-option" else []))
    assert code == expected and "Traceback" not in err
    if case == "missing":
        assert err.startswith("upband: error: ") and "no such file" in err
    elif case == "bad-option":
        assert err.count("\n") == 1 and err.startswith("upband: error: ")
    if "OUT" in RULE_CASES[command][0]:
        assert out_path.exists() == (case == "done")


def test_enhance_goes_on_after_a_failed_file(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "enhance", str(tmp_path / "missing.wav"), str(MUSIC), "-o",
                       str(out_dir), "--model", "upband_unittest", "-q")
    assert code == 1 and "no such file" in err and "1 failed" in err
    assert (out_dir / "loop_compus_3s.upband.flac").exists()


def test_unwritable_output_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, out, err = run(capsys, "degrade", str(MUSIC), "-o", str(blocker / "x.wav"), "--mp3",
                         "64")
    assert code == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err


def test_enhance_unwritable_output_exits_1(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, "enhance", str(MUSIC), "-o", str(blocker / "x.wav"), "--model",
                       "upband_unittest", "-q")
    assert code == 1 and "Traceback" not in err and "internal error" not in err


def test_internal_error_is_one_line(capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr("upband.cli.presets.describe_presets", broken)
    monkeypatch.delenv("UPBAND_DEBUG", raising=False)
    code, out, err = run(capsys, "presets")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("upband: error: internal error: RuntimeError: boom")


def test_help_states_the_exit_status_rule(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["info", "--help"]):
        code, out, _ = run(capsys, *argv)
        text = " ".join(out.split())
        assert code == 0 and "exit status: 0 all done; 1 at least one input file could not " \
            "be processed" in text and "2 the command line is wrong" in text


def test_start_up_stays_light() -> None:
    code = ("import sys\nfrom upband.cli import main\n"
            "for argv in (['--help'], ['--version']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = {'torch', 'scipy', 'matplotlib', 'upband.enhancement'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "upband.cli", "--version"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == f"upband {__version__}"


def test_metrics_json_numbers_follow_the_one_rule(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, "metrics", str(MUSIC), str(MUSIC), "--json", "--no-visqol")
    assert code == 0 and json.loads(out)["metrics"]["snr"] == "inf"
    monkeypatch.setattr("upband.cli.metrics.compute_all",
                        lambda *a, **k: {"snr": float("-inf"), "visqol": float("nan")})
    code, out, _ = run(capsys, "metrics", str(MUSIC), str(MUSIC), "--json")
    assert code == 0 and json.loads(out)["metrics"] == {"snr": "-inf", "visqol": None}


def test_pair_signals_matches_rate_channels_and_length() -> None:
    from upband.metrics.pairing import pair_signals

    t = np.arange(44100) / 44100
    ref = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    est = audio.resample(ref[:1, :40000], 44100, 48000)
    pair = pair_signals(ref, 44100, est, 48000)
    assert pair.sample_rate == 44100 and pair.lag == 0
    assert pair.reference.shape == pair.estimate.shape == (2, 40000) == (2, pair.frames)
    assert pair.notes == ("estimate resampled 48000 -> 44100 Hz",
                          "mono compared with every channel",
                          "lengths differ (44100 vs 40000 samples), cropped")
    np.testing.assert_array_equal(pair.estimate[0], pair.estimate[1])
    assert np.allclose(pair.estimate[0, 1000:-1000], ref[0, 1000:39000], atol=1e-3)
    with pytest.raises(UpbandError, match="cannot compare 2 reference channels with 3"):
        pair_signals(ref, 44100, np.zeros((3, 100), np.float32), 44100)


def test_enhance_refuses_its_own_input_as_a_command_line_error(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``upband enhance x.flac -o x.flac``: the command line is wrong (2), as for degrade, and
    the two say it in the same words."""
    src = tmp_path / "x.flac"
    src.write_bytes(MUSIC.read_bytes())
    for argv in (["enhance", str(src), "-o", str(src), "--model", "upband_unittest"],
                 ["degrade", str(src), "-o", str(src), "--mp3", "64"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.strip() == \
            f"upband: error: {src}: is the input; upband never overwrites its input", argv
    assert src.read_bytes() == MUSIC.read_bytes()


def test_enhance_with_an_unwritable_report_exits_1_after_the_work(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "out.flac"
    report = tmp_path / "no-such-folder" / "sub" / "r.json"
    (tmp_path / "no-such-folder").write_text("a file, not a folder")
    code, _, err = run(capsys, "enhance", str(MUSIC), "-o", str(out), "--model",
                       "upband_unittest", "--report", str(report))
    assert code == 1 and out.is_file() and "Traceback" not in err
    assert f"upband: error: {report}: cannot write the report" in err
