"""Training crops and validation excerpts: determinism, degradation, padded crops, workers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from upband import audio
from upband.data import (
    Corpus,
    CropDataset,
    SyntheticSource,
    build_corpus,
    build_validation,
    synthetic_source,
)
from upband.degrade import presets
from upband.errors import SpecError

SR = 44100


@pytest.fixture(scope="module")
def source() -> SyntheticSource:
    return synthetic_source(SR, files=(3, 2, 1), seconds=3.0, seed=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, source: SyntheticSource) -> Corpus:
    """A real corpus of synthetic music written to files (train: 2 files, validation: 1)."""
    root = tmp_path_factory.mktemp("ds")
    music = root / "music"
    music.mkdir()
    for r in source.files("train") + source.files("validation"):
        audio.write(music / f"{r.split}-{r.relpath.split('/')[-1]}.wav",
                    source.segment(r) / 32768.0, SR)
    build_corpus([music], root / "corpus", workers=0, progress=False, shard_seconds=2.0,
                 split_lists={"train": ["train-*"], "validation": ["validation-*"]})
    return Corpus.open(root / "corpus")


def band_energy_db(x: np.ndarray, above_hz: float) -> float:
    w = np.hanning(x.shape[-1])
    p = np.abs(np.fft.rfft(x * w)) ** 2
    f = np.fft.rfftfreq(x.shape[-1], 1 / SR)
    return float(10 * np.log10(p[..., f > above_hz].sum() + 1e-30))


def test_items_are_deterministic_per_seed_and_index(source: SyntheticSource) -> None:
    ds = CropDataset(source, crop_samples=4096, seed=3, length=100)
    again = CropDataset(source, crop_samples=4096, seed=3, length=100)
    other = CropDataset(source, crop_samples=4096, seed=4, length=100)
    assert len(ds) == 100
    a, b = ds[17], again[17]
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    assert a["params"] == b["params"] and a["file"] == b["file"]
    assert not torch.equal(ds[18]["target"], a["target"])
    assert not torch.equal(other[17]["target"], a["target"])
    with pytest.raises(IndexError):
        ds[100]


def test_item_shapes_and_params(source: SyntheticSource) -> None:
    ds = CropDataset(source, crop_samples=3000, preset="sulun-multi", length=50)
    item = ds[0]
    assert item["input"].shape == item["target"].shape == (2, 3000)
    assert item["input"].dtype == item["target"].dtype == torch.float32
    assert item["file"] in {r.id for r in source.files("train")}
    params = presets.params_from_dict(json.loads(item["params"]))
    assert isinstance(params, presets.Lowpass) and params.cutoff_hz == 11025.0
    families = {json.loads(ds[i]["params"])["family"] for i in range(50)}
    assert len(families) >= 3  # sulun-multi draws several filters
    mono = CropDataset(source, crop_samples=3000, channels=1, length=5)
    assert mono[0]["target"].shape == (1, 3000)
    with pytest.raises(SpecError, match="unknown degradation preset"):
        CropDataset(source, crop_samples=3000, preset="nope")
    with pytest.raises(SpecError):
        CropDataset(source, crop_samples=3000, channels=3)


def test_input_is_the_degraded_target(source: SyntheticSource) -> None:
    """Sulun's seen filter: above 13 kHz the input is at least 40 dB below the target."""
    ds = CropDataset(source, crop_samples=16384, gain_db=(0.0, 0.0), length=10)
    for i in range(4):
        item = ds[i]
        x, y = item["input"].numpy(), item["target"].numpy()
        assert band_energy_db(x, 13000) <= band_energy_db(y, 13000) - 40
        # the pass band is kept: below 9 kHz they differ by the filter's 0.1 dB ripple only
        w = np.hanning(x.shape[-1])
        lo_x = np.fft.rfft(x * w)[..., : int(9000 / SR * x.shape[-1])]
        lo_y = np.fft.rfft(y * w)[..., : int(9000 / SR * y.shape[-1])]
        assert np.sum(np.abs(lo_x - lo_y) ** 2) <= 10 ** -3.5 * np.sum(np.abs(lo_y) ** 2)


def test_gain_is_applied_to_both(source: SyntheticSource) -> None:
    base = CropDataset(source, crop_samples=2048, gain_db=(0.0, 0.0), length=5)
    quiet = CropDataset(source, crop_samples=2048, gain_db=(-6.0, -6.0), length=5)
    g = np.float32(10 ** (-6 / 20))
    for i in range(3):
        a, b = base[i], quiet[i]
        np.testing.assert_allclose(b["target"].numpy(), a["target"].numpy() * g, atol=1e-7)
        np.testing.assert_allclose(b["input"].numpy(), a["input"].numpy() * g, atol=1e-7)


def test_padded_crop_matches_filtering_the_whole_file(source: SyntheticSource) -> None:
    """The input equals the whole file filtered then cropped; filtering the bare crop (Sulun)
    differs at the crop edges."""
    ds = CropDataset(source, crop_samples=4096, gain_db=(0.0, 0.0), length=40)
    params = presets.sample("sulun-single", np.random.default_rng(0), SR)
    checked = 0
    for index in range(40):
        record, start = ds.pick(np.random.default_rng([ds.seed, index]))
        if start < 200 or start + 4096 > record.frames - 200:
            continue  # only crops well inside a file
        whole = source.read(record, 0, record.frames)
        ref = presets.apply(whole, SR, params)[:, start:start + 4096]
        crop = whole[:, start:start + 4096]
        bare = presets.apply(crop, SR, params)
        got = ds[index]["input"].numpy()
        np.testing.assert_array_equal(ds[index]["target"].numpy(), crop)
        assert np.abs(got - ref).max() < 1e-6
        diff = np.abs(bare - ref)
        assert max(diff[:, :64].max(), diff[:, -64:].max()) > 3e-4  # edge transients
        assert diff[:, 1000:-1000].max() < 1e-6  # the bare crop is right in the middle only
        checked += 1
    assert checked >= 10


def test_dataloader_workers_give_the_same_batches(corpus: Corpus) -> None:
    ds = CropDataset(corpus, crop_samples=2048, preset="sulun-multi", length=16, seed=5)
    assert {r.id for r in ds.records} == {"music/train-000.wav", "music/train-001.wav",
                                          "music/train-002.wav"}

    def batches(workers: int) -> list[dict[str, object]]:
        loader = DataLoader(ds, batch_size=4, num_workers=workers, shuffle=False)
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 4
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
        assert a["params"] == b["params"] and a["file"] == b["file"]
        assert a["input"].shape == (4, 2, 2048)


def test_corpus_and_memory_sources_give_the_same_crops(corpus: Corpus,
                                                       source: SyntheticSource) -> None:
    """The corpus holds the synthetic files bit for bit, so crops agree exactly."""
    a = CropDataset(corpus, crop_samples=2048, length=8)
    b = CropDataset(source, crop_samples=2048, length=8)
    for i in range(8):
        x, y = a[i], b[i]
        assert x["file"].split("-")[-1] == y["file"].split("/")[-1] + ".wav"
        assert torch.equal(x["target"], y["target"]) and torch.equal(x["input"], y["input"])


def test_validation_excerpts_start_at_eight_seconds() -> None:
    src = synthetic_source(SR, files=(1, 9, 0), seconds=10.5, seed=2)
    items = build_validation(src, preset="sulun-multi", seconds=2.0, max_files=8)
    assert len(items) == 8
    for it in items:
        record = next(r for r in src.files("validation") if r.id == it.name)
        want = src.segment(record)[:, 8 * SR:10 * SR] / np.float32(32768)
        np.testing.assert_array_equal(it.clean, want)
        assert it.degraded.shape == it.clean.shape == (2, 2 * SR)
    # one filter per song: the 8 Sulun filters, each once
    assert len({json.dumps(it.params, sort_keys=True) for it in items}) == 8
    again = build_validation(src, preset="sulun-multi", seconds=2.0, max_files=8)
    for a, b in zip(items, again, strict=True):
        assert a.name == b.name and a.params == b.params
        np.testing.assert_array_equal(a.degraded, b.degraded)
    unseen = build_validation(src, preset="sulun-unseen", seconds=2.0, max_files=2)
    assert {it.params["family"] for it in unseen} == {"butter"}
    # shorter songs: from the start
    short = build_validation(src, preset="sulun-single", seconds=4.0, max_files=1)
    record = next(r for r in src.files("validation") if r.id == short[0].name)
    np.testing.assert_array_equal(short[0].clean,
                                  src.segment(record)[:, :4 * SR] / np.float32(32768))


def test_synthetic_source_is_harmonic_and_deterministic() -> None:
    a = synthetic_source(SR, files=(2, 1, 1), seconds=1.0, seed=0)
    b = synthetic_source(SR, files=(2, 1, 1), seconds=1.0, seed=0)
    ids = [r.id for s in ("train", "validation", "test") for r in a.files(s)]
    assert len(set(ids)) == 4
    for r in a.files("train"):
        x = a.segment(r)
        np.testing.assert_array_equal(x, b.segment(r))
        assert x.dtype == np.int16 and x.shape == (2, SR)
        xf = x / 32768.0
        total = band_energy_db(xf, 20)
        # real content above Sulun's cutoff, up to near Nyquist
        assert total - 25 < band_energy_db(xf, 11025) < total - 8
        assert band_energy_db(xf, 19000) > total - 40
    assert not np.array_equal(a.segment(a.files("train")[0]), a.segment(a.files("test")[0]))
