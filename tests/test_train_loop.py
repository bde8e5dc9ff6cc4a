"""The training loop on synthetic harmonic music: it learns, it resumes exactly (also after a
SIGKILL), it keeps its run folder consistent, it stops on a time budget."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from upband.models.base import WaveModel
from upband.states import load_model, read_header
from upband.train.checkpoint import CheckpointError, find_latest, list_checkpoints
from upband.train.config import Config, config_to_dict, load_config
from upband.train.data import StepBatchSampler
from upband.train.loop import StepInfo, train

#: A small ARUNet (3 levels, 16-32 channels, ~80 k parameters) on 2 s synthetic files.
TINY = [
    "data.corpus=synthetic", "data.synthetic={files=[4, 2, 0], seconds=2.0}",
    "data.crop_samples=4096", "data.context_samples=2048", "data.preset=sulun-single",
    "model.name=arunet",
    "model.kwargs={widths=[16, 24, 32], kernels=[9, 7, 5], dropout=0.0, init_std=0.02}",
    "optim.name=adamw", "optim.lr=1e-3", "optim.betas=[0.9, 0.99]", "optim.weight_decay=1e-4",
    "train.batch_size=4", "train.log_every=10", "validation.max_files=2",
    "validation.seconds=2.0", "runtime.progress=false", "runtime.tensorboard=false",
]
#: Even smaller, with every source of state a resume must restore: dropout (RNG), EMA,
#: the plateau rule's partial windows, Adam moments, BN statistics.
STATEFUL = [
    "data.corpus=synthetic", "data.synthetic={files=[3, 1, 0], seconds=1.0}",
    "data.crop_samples=2048", "data.context_samples=1024", "model.name=arunet",
    "model.kwargs={widths=[8, 12], kernels=[5, 3], dropout=0.3, init_std=0.02}",
    "optim.lr=1e-3", "optim.grad_clip=1.0", "train.batch_size=2", "train.log_every=2",
    "train.ema_decay=0.9", "schedule.name=plateau", "schedule.plateau_window=3",
    "schedule.plateau_patience=1", "validation.every=4", "validation.max_files=1",
    "validation.seconds=1.0", "checkpoint.every=3", "checkpoint.keep_last=10",
    "runtime.progress=false", "runtime.tensorboard=false",
]
FINAL_STEP = 12


def _config(base: list[str], *extra: str) -> Config:
    return load_config(None, [*base, *extra])


def _weights(run_dir: Path, step: int, name: str = "model") -> dict[str, torch.Tensor]:
    folder = run_dir / "checkpoints" / f"step-{step:08d}"
    if name == "model":
        return load_model(folder / "model.safetensors").state_dict()
    from safetensors.torch import load_file

    return load_file(str(folder / f"{name}.safetensors"))


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _without_time(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


# --------------------------------------------------------------------------------------------
# learning
# --------------------------------------------------------------------------------------------


def test_tiny_arunet_learns_the_seen_filter(tmp_path: Path) -> None:
    """Acceptance: ~200 steps on harmonic signals low-passed by the seen filter (Chebyshev-I
    order 6 at 11 025 Hz) raise the validation SNR by at least 1 dB."""
    config = _config(TINY, "train.max_steps=200", "validation.every=100",
                     "checkpoint.every=100", "runtime.tensorboard=true")
    result = train(config, tmp_path / "run", quiet=True)
    first, last = result.validations[0], result.validations[-1]
    print(f"\nseen SNR {first['seen_input_snr']:.2f} dB (input) -> "
          f"{last['seen_output_snr']:.2f} dB after {result.step} steps; unseen "
          f"{first['unseen_input_snr']:.2f} -> {last['unseen_output_snr']:.2f} dB; seen loss "
          f"{first['seen_loss']:.3g} -> {last['seen_loss']:.3g}; LSD "
          f"{first['seen_output_lsd']:.2f} -> {last['seen_output_lsd']:.2f}")
    assert result.step == 200 and result.stop_reason == "max_steps"
    assert [v["step"] for v in result.validations] == [0, 100, 200]
    # a fresh ARUNet is the identity: the first validation is the input
    assert first["seen_output_snr"] == pytest.approx(first["seen_input_snr"], abs=1e-3)
    assert last["seen_output_snr"] >= first["seen_input_snr"] + 1.0
    assert last["seen_loss"] < 0.8 * first["seen_loss"]
    assert last["seen_output_lsd"] < first["seen_input_lsd"]
    # the run folder: config, log, events, checkpoints, best model
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text()) == config_to_dict(config)
    rows = _rows(run)
    train_rows = [r for r in rows if r["train_loss"]]
    assert [int(r["step"]) for r in train_rows] == list(range(10, 201, 10))
    assert float(train_rows[-1]["train_loss"]) < float(train_rows[0]["train_loss"])
    val_rows = [r for r in rows if r["seen_output_snr"]]
    assert [int(r["step"]) for r in val_rows] == [0, 100, 200]
    assert float(val_rows[-1]["seen_output_snr"]) == pytest.approx(last["seen_output_snr"])
    try:
        import tensorboard  # noqa: F401
    except ImportError:  # optional: the run warns and writes no events
        assert not (run / "tensorboard").exists()
    else:
        assert any((run / "tensorboard").iterdir())
    assert [p.name for p in list_checkpoints(run)] == ["step-00000100", "step-00000200"]
    best = read_header(run / "best.safetensors").metadata["best"]
    assert best["metric"] == "unseen_output_snr" and best["step"] == 200
    assert best["value"] == pytest.approx(last["unseen_output_snr"])


# --------------------------------------------------------------------------------------------
# exact resume
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of FINAL_STEP steps, loading data in 2 DataLoader workers."""
    run = tmp_path_factory.mktemp("reference") / "run"
    result = train(_config(STATEFUL, f"train.max_steps={FINAL_STEP}", "data.workers=2"), run,
                   quiet=True)
    assert result.step == FINAL_STEP
    return run


def test_interrupted_and_resumed_equals_uninterrupted(reference: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = train(_config(STATEFUL, "train.max_steps=5"), run, quiet=True)
    assert (first.step, first.checkpoint) == (5, run / "checkpoints" / "step-00000005")
    second = train(_config(STATEFUL, f"train.max_steps={FINAL_STEP}"), run, resume=True,
                   quiet=True)
    assert (second.start_step, second.step) == (5, FINAL_STEP)
    _assert_same(_weights(reference, FINAL_STEP), _weights(run, FINAL_STEP))
    _assert_same(_weights(reference, FINAL_STEP, "ema"), _weights(run, FINAL_STEP, "ema"))
    _assert_same(_weights(reference, FINAL_STEP, "optimizer"),
                 _weights(run, FINAL_STEP, "optimizer"))
    ref_state = json.loads((reference / "checkpoints/step-00000012/state.json").read_text())
    state = json.loads((run / "checkpoints/step-00000012/state.json").read_text())
    assert state["schedule"] == ref_state["schedule"]  # plateau decisions included
    assert state["schedule"]["scale"] < 1.0  # the rule fired during the run
    # the compute a run has had adds up across the resume (both invocations are counted)
    at_5 = json.loads((run / "checkpoints/step-00000005/state.json").read_text())
    assert 0.0 < at_5["cpu_seconds"] < state["cpu_seconds"]
    # the log is the same, row for row (only the wall-clock column differs)
    assert _without_time(_rows(run)) == _without_time(_rows(reference))


KILLER = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    from upband.train.config import config_from_dict
    from upband.train.loop import train

    torch.set_num_threads(int(sys.argv[4]))  # bit-exact float sums need the same thread count

    def die(info):
        if info.step == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)

    config = config_from_dict(json.loads(open(sys.argv[1]).read()))
    train(config, sys.argv[2], quiet=True, on_step=die)
""")


def test_sigkill_then_resume_from_last_checkpoint(reference: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config_to_dict(_config(STATEFUL, "train.max_steps=1000"))))
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.run([sys.executable, str(script), str(config_file), str(run), "9",
                           str(torch.get_num_threads())],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # killed after step 9 (before its checkpoint): checkpoints 3 and 6, log rows up to step 8
    assert find_latest(run) == run / "checkpoints" / "step-00000006"
    assert max(int(r["step"]) for r in _rows(run)) == 8
    result = train(_config(STATEFUL, f"train.max_steps={FINAL_STEP}"), run, resume=True,
                   quiet=True)
    assert (result.start_step, result.step) == (6, FINAL_STEP)
    _assert_same(_weights(reference, FINAL_STEP), _weights(run, FINAL_STEP))
    # rows logged after the checkpoint by the killed run were dropped, then logged again
    assert _without_time(_rows(run)) == _without_time(_rows(reference))


# --------------------------------------------------------------------------------------------
# run-folder rules, budget, data order
# --------------------------------------------------------------------------------------------


def test_run_folder_rules(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = _config(STATEFUL, "train.max_steps=2", "validation.at_start=false",
                  "validation.every=0")
    # --resume on an empty folder starts a fresh run (the same command can be repeated)
    assert train(cfg, run, resume=True, quiet=True).start_step == 0
    with pytest.raises(CheckpointError, match="already holds a training run; pass --resume"):
        train(cfg, run, quiet=True)
    with pytest.raises(CheckpointError, match=r"differs from the run's in optim\.lr"):
        train(cfg.updated({"optim.lr": 5e-4, "train.max_steps": 4}), run, resume=True,
              quiet=True)
    # resuming a finished run does nothing and writes nothing new
    again = train(cfg, run, resume=True, quiet=True)
    assert (again.start_step, again.step) == (2, 2)
    assert [p.name for p in list_checkpoints(run)] == ["step-00000002"]
    # --resume in a folder killed before its first checkpoint: a fresh start, stale rows gone
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "metrics.csv").write_text("step,time_s,lr,train_loss\n99,1.0,0.1,0.5\n")
    train(cfg, killed, resume=True, quiet=True)
    assert [r["step"] for r in _rows(killed)] == ["2"]


def test_resumes_a_run_folder_of_checkpoint_format_1(tmp_path: Path) -> None:
    """Run folders written before the tasks were pluggable still resume."""
    run = tmp_path / "run"
    cfg = _config(STATEFUL, "train.max_steps=3", "validation.at_start=false",
                  "validation.every=0")
    train(cfg, run, quiet=True)
    path = run / "checkpoints/step-00000003/state.json"
    state = json.loads(path.read_text())
    for key in ("modules", "optimizers", "task"):
        del state[key]
    state.update(format_version=1, ema=True)
    path.write_text(json.dumps(state))
    more = train(cfg.updated({"train.max_steps": 4}), run, resume=True, quiet=True)
    assert (more.start_step, more.step) == (3, 4)


def test_time_budget_and_sigterm_stop_with_a_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = _config(STATEFUL, "train.max_steps=100000", "train.max_minutes=0.0001",
                  "validation.at_start=false")
    result = train(cfg, run, quiet=True)
    assert result.stop_reason == "time_budget" and 1 <= result.step < 100
    assert find_latest(run) == run / "checkpoints" / f"step-{result.step:08d}"

    def terminate(info: StepInfo) -> None:
        if info.step == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # what `timeout` or a batch scheduler sends

    before = signal.getsignal(signal.SIGTERM)
    stopped = train(_config(STATEFUL, "train.max_steps=1000", "validation.every=0",
                            "validation.at_start=false"), tmp_path / "term", quiet=True,
                    on_step=terminate)
    assert (stopped.stop_reason, stopped.step) == ("signal", 4)
    assert find_latest(tmp_path / "term") == tmp_path / "term/checkpoints/step-00000004"
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back


def test_cpu_budget_counts_the_whole_run_across_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    budget_s = 1.5
    cfg = _config(STATEFUL, "train.max_steps=100000", f"train.max_cpu_minutes={budget_s / 60}",
                  "validation.every=0", "validation.at_start=false")
    first = train(cfg, run, quiet=True)
    assert first.stop_reason == "cpu_budget" and 1 <= first.step < 100000
    latest = find_latest(run)
    assert latest == run / "checkpoints" / f"step-{first.step:08d}"
    cpu = json.loads((latest / "state.json").read_text())["cpu_seconds"]
    assert budget_s <= cpu < budget_s + 30
    # resumed, the budget is already spent: one more step at most, then a stop
    again = train(cfg, run, resume=True, quiet=True)
    assert again.stop_reason == "cpu_budget" and first.step <= again.step <= first.step + 1
    more = train(cfg.updated({"train.max_cpu_minutes": 2 * budget_s / 60}), run, resume=True,
                 quiet=True)
    assert more.stop_reason == "cpu_budget" and more.step > again.step


def test_data_order_is_a_function_of_the_step(tmp_path: Path) -> None:
    assert StepBatchSampler.indices(3, 4) == [12, 13, 14, 15]
    assert StepBatchSampler.indices(3, 4, rank=1, world_size=2) == [28, 29, 30, 31]
    assert list(StepBatchSampler(2, 4, 2, rank=0, world_size=2)) == [[8, 9], [12, 13]]
    seen: list[tuple[int, list[int]]] = []
    models: list[torch.nn.Module] = []

    def record(info: StepInfo) -> None:
        seen.append((info.step, info.indices))
        models.append(info.model)
        assert torch.isfinite(info.loss) and info.lr > 0

    train(_config(STATEFUL, "train.max_steps=3", "validation.every=0",
                  "validation.at_start=false"), tmp_path / "run", quiet=True, on_step=record)
    assert seen == [(1, [0, 1]), (2, [2, 3]), (3, [4, 5])]
    assert all(isinstance(m, WaveModel) for m in models)


def test_trains_on_a_corpus_folder(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    from upband.data import build_corpus
    from upband.train.config import ConfigError

    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "val"):
        sf.write(tmp_path / f"{name}.wav", 0.1 * rng.standard_normal((16000, 2)), 16000)
    corpus = tmp_path / "corpus"
    build_corpus([tmp_path], corpus, sample_rate=16000, min_cutoff_hz=0, workers=0,
                 split_lists={"validation": ["val.wav"], "test": []}, progress=False)
    with pytest.raises(ConfigError, match=r"is at 16000 Hz but data\.sample_rate is 44100"):
        train(_config(TINY, f"data.corpus={corpus}"), tmp_path / "run", quiet=True)
    with pytest.raises(ConfigError, match="cuts at 11025 Hz, above the Nyquist frequency"):
        _config(TINY, f"data.corpus={corpus}", "data.sample_rate=16000")
    result = train(_config(TINY, f"data.corpus={corpus}", "data.sample_rate=16000",
                           "data.crop_samples=2048", "data.preset=kuleshov-r2",
                           "validation.unseen_preset=", "checkpoint.best_metric=seen_output_snr",
                           "train.max_steps=2", "validation.every=2"),
                   tmp_path / "run16", quiet=True)
    assert result.step == 2 and len(result.validations) == 2
    assert result.validations[0]["seen_input_snr"] > 0


def test_cli_entry_points(tmp_path: Path) -> None:
    from upband.train import default_run_dir, resolve_config, run_training, summarize

    recipe = tmp_path / "tiny.toml"
    recipe.write_text('description = "tiny"\n')
    overrides = [*STATEFUL, "train.max_steps=2", "validation.every=2"]
    assert default_run_dir(recipe) == Path("runs") / "tiny"
    run = tmp_path / "runs" / "tiny"
    result = run_training(recipe, overrides, run_dir=run, quiet=True)
    line = summarize(result)
    assert line.startswith(f"{run}: step 2; done; train loss ")
    assert "seen SNR" in line and "unseen SNR" in line and "best unseen_output_snr" in line
    # a run folder stands for its own config; overrides apply on top, then --resume continues
    assert default_run_dir(run) == run
    assert resolve_config(run) == resolve_config(recipe, overrides)
    more = run_training(run, ["train.max_steps=3"], resume=True, quiet=True)
    assert (more.start_step, more.step) == (2, 3)
    assert "(resumed at 2)" in summarize(more)


class _NaNData(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __len__(self) -> int:
        return 1_000_000

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        x = torch.full((2, 512), float("nan"))
        return {"input": x, "target": x}


def test_custom_data_and_divergence(tmp_path: Path) -> None:
    from upband.errors import UpbandError
    from upband.train.data import TrainData
    from upband.train.loop import DivergenceError

    cfg = _config(STATEFUL, "train.max_steps=4", "validation.every=0",
                  "validation.at_start=false")
    with pytest.raises(DivergenceError, match="training diverged: the loss is nan at step 2") \
            as err:
        train(cfg, tmp_path / "run", data=TrainData(_NaNData()), quiet=True)
    assert isinstance(err.value, UpbandError)


# --------------------------------------------------------------------------------------------
# initial weights (model.init)
# --------------------------------------------------------------------------------------------


def test_fresh_run_starts_from_model_init(tmp_path: Path) -> None:
    from upband.train.config import ConfigError

    base = [*STATEFUL, "train.ema_decay=0.0", "validation.at_start=false",
            "validation.every=3", "checkpoint.every=3", "train.max_steps=3"]
    donor = train(_config(base), tmp_path / "donor", quiet=True)
    weights = tmp_path / "donor/checkpoints/step-00000003/model.safetensors"
    # a fresh run from those weights: its step-0 validation is the donor's at step 3
    cfg = _config(base, f"model.init={weights}", "validation.at_start=true",
                  "train.max_steps=1")
    fresh = train(cfg, tmp_path / "fresh", quiet=True)
    assert {**fresh.validations[0], "step": 3.0} == donor.validations[-1]
    assert fresh.validations[0]["seen_output_snr"] != pytest.approx(
        fresh.validations[0]["seen_input_snr"], abs=1e-3)  # not the identity-initialised net
    # resuming takes the checkpoint's weights: the init file is not read again
    weights.rename(tmp_path / "moved.safetensors")
    more = train(cfg.updated({"train.max_steps": 2}), tmp_path / "fresh", resume=True,
                 quiet=True)
    assert (more.start_step, more.step) == (1, 2)
    # another architecture or other arguments: a one-line error
    other = _config(base, f"model.init={tmp_path / 'moved.safetensors'}",
                    "model.kwargs={widths=[8, 16], kernels=[5, 3], dropout=0.3, init_std=0.02}")
    with pytest.raises(ConfigError, match=r"model\.init .*: the 'arunet' arguments differ "
                                          r"from the run's in widths \(file .8, 12., run .8, 16"):
        train(other, tmp_path / "other", quiet=True)
