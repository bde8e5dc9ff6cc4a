"""Corpus builder: stable disjoint splits, skipped files, exact shards, packing, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from upband import audio
from upband.data.corpus import (
    INDEX_NAME,
    META_NAME,
    SPLITS,
    Corpus,
    build_corpus,
    default_min_cutoff,
    pack_corpus,
    parse_splits,
    read_split_lists,
    split_of,
    unpack_corpus,
)
from upband.degrade.filters import lowpass
from upband.errors import (
    AudioFileNotFoundError,
    CorpusError,
    OutputExistsError,
    SpecError,
    UnsupportedFormatError,
)

SHARD_SECONDS = 0.7  # short shards, so that some files span two of them


def noise(rng: np.random.Generator, sr: int, seconds: float, channels: int) -> np.ndarray:
    return (0.1 * rng.standard_normal((channels, int(seconds * sr)))).astype(np.float32)


def make_tree(root: Path) -> Path:
    """A small music folder: full-band noise at several rates and channel counts, a low-passed
    file, a corrupt one, a silent one and a byte-identical duplicate."""
    rng = np.random.default_rng(7)
    music = root / "music"
    (music / "sub").mkdir(parents=True)
    specs = [("a.wav", 44100, 2, 1.3), ("b.flac", 48000, 1, 0.9), ("sub/c.wav", 96000, 2, 0.6),
             ("sub/d.flac", 44100, 1, 0.4), ("e.wav", 88200, 2, 1.1)]
    specs += [(f"sub/n{i}.wav", 44100, 2, 0.3 + 0.1 * i) for i in range(8)]
    specs += [("sub/tiny.wav", 44100, 2, 0.05)]  # shorter than one detector frame
    for name, sr, ch, sec in specs:
        audio.write(music / name, noise(rng, sr, sec, ch), sr)
    audio.write(music / "sub/low.wav", lowpass(noise(rng, 44100, 1.0, 2), 44100, 8000.0,
                                               "butter:12"), 44100)
    audio.write(music / "silent.wav", np.zeros((2, 22050), np.float32), 44100)
    (music / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 8)
    shutil.copy(music / "a.wav", music / "sub/dup.wav")
    (music / "notes.txt").write_text("not audio")
    return music


SPLIT_FRACTIONS = (0.5, 0.25, 0.25)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Corpus]:
    root = tmp_path_factory.mktemp("lib")
    music = make_tree(root)
    out = root / "corpus"
    build_corpus([f"{music}::CC0-1.0"], out, splits=SPLIT_FRACTIONS, workers=0,
                 shard_seconds=SHARD_SECONDS, progress=False)
    return music, Corpus.open(out)


def test_index_records_every_file_with_its_split_and_licence(built: tuple[Path, Corpus]) -> None:
    _, corpus = built
    ids = [r.id for r in corpus.records]
    assert len(ids) == len(set(ids)) == 18  # every audio file once; notes.txt ignored
    assert all(i.startswith("music/") for i in ids)
    assert {r.licence for r in corpus.records} == {"CC0-1.0"}
    for r in corpus.records:
        assert r.split == split_of(r.id, SPLIT_FRACTIONS)
        assert r.split in SPLITS
    assert all(len(corpus.files(s)) > 0 for s in SPLITS)
    split_files = [{r.id for r in corpus.files(s)} for s in SPLITS]
    assert sum(map(len, split_files)) == len(set().union(*split_files)) == 14


def test_skipped_files_carry_their_reason(built: tuple[Path, Corpus]) -> None:
    _, corpus = built
    by_id = {r.id: r for r in corpus.records}
    low = by_id["music/sub/low.wav"]
    assert low.skip_kind == "low-cutoff" and low.cutoff_hz is not None
    assert 6000 < low.cutoff_hz < default_min_cutoff(44100) == 16000.0
    assert not low.pieces and low.frames == 0
    assert by_id["music/corrupt.flac"].skip_kind == "error"
    assert "corrupt" in (by_id["music/corrupt.flac"].skipped or "")
    assert by_id["music/silent.wav"].skip_kind == "silent"
    assert by_id["music/sub/dup.wav"].skipped == "duplicate: same bytes as music/a.wav"
    assert by_id["music/sub/dup.wav"].sha256 == by_id["music/a.wav"].sha256
    summary = corpus.summary()
    assert summary.skipped == {"duplicate": 1, "error": 1, "low-cutoff": 1, "silent": 1}
    assert summary.files_seen == 18
    assert sum(t.files for t in summary.splits.values()) == 14
    assert "skipped" in summary.format()


def test_segments_are_the_resampled_originals(built: tuple[Path, Corpus]) -> None:
    music, corpus = built
    spanning = 0
    for r in corpus.files():
        x, sr = audio.read(music / r.relpath)
        assert (r.sample_rate, r.channels) == (sr, x.shape[0])
        assert r.duration_s == pytest.approx(x.shape[1] / sr) and r.clipped == 0
        ref = audio.to_channels(audio.resample(x, sr, 44100), 2)
        seg = corpus.segment(r)
        assert seg.dtype == np.int16 and seg.shape == ref.shape == (2, r.frames)
        # int16 rounding: at most half an LSB
        assert np.abs(seg / 32768.0 - ref).max() <= 0.5 / 32768 + 1e-7
        if len(r.pieces) == 1:
            assert not seg.flags.owndata  # a view into the memory-mapped shard
        spanning += len(r.pieces) > 1
    assert spanning > 0
    for shard in corpus.meta["shards"]:
        arr = np.load(corpus.shard_path(shard["name"]), mmap_mode="r")
        assert arr.dtype == np.int16 and arr.shape[0] == 2
        assert arr.shape[1] <= round(SHARD_SECONDS * 44100)


def test_read_zero_pads_outside_the_file(built: tuple[Path, Corpus]) -> None:
    _, corpus = built
    r = max(corpus.files(), key=lambda r: len(r.pieces))
    seg = corpus.segment(r).astype(np.float32) / 32768
    x = corpus.read(r, -100, r.frames + 300)
    assert x.dtype == np.float32 and x.shape == (2, r.frames + 300)
    assert not x[:, :100].any() and not x[:, 100 + r.frames:].any()
    np.testing.assert_array_equal(x[:, 100:100 + r.frames], seg)


def test_split_is_stable_across_locations_and_worker_counts(
        built: tuple[Path, Corpus], tmp_path: Path) -> None:
    music, corpus = built
    moved = tmp_path / "elsewhere" / "deeper" / "music"
    shutil.copytree(music, moved)
    out = build_corpus([f"{moved}::CC0-1.0"], tmp_path / "again", splits=SPLIT_FRACTIONS,
                       workers=2, shard_seconds=SHARD_SECONDS, progress=False)
    again = Corpus.open(tmp_path / "again")
    assert {r.id: r.split for r in again.records} == {r.id: r.split for r in corpus.records}
    # the very same shards, byte for byte
    assert again.meta["shards"] == corpus.meta["shards"]
    assert out.splits == corpus.summary().splits


def test_split_lists_force_membership(built: tuple[Path, Corpus], tmp_path: Path) -> None:
    music, corpus = built
    lists = {"test": ["music/a.wav", "sub/n1.wav"], "validation": ["music/sub/n[4-7].wav"]}
    build_corpus([music], tmp_path / "forced", splits=SPLIT_FRACTIONS, split_lists=lists,
                 workers=0, progress=False)
    forced = {r.id: r for r in Corpus.open(tmp_path / "forced").records}
    assert forced["music/a.wav"].split == forced["music/sub/n1.wav"].split == "test"
    assert {forced[f"music/sub/n{i}.wav"].split for i in range(4, 8)} == {"validation"}
    assert forced["music/a.wav"].licence == "unknown"
    for r in corpus.records:  # everything else keeps its hash split
        if r.id not in ("music/a.wav", "music/sub/n1.wav") and "/n" not in r.id:
            assert forced[r.id].split == r.split
    with pytest.raises(SpecError, match="more than one split"):
        build_corpus([music], tmp_path / "bad", split_lists={"test": ["*a.wav"],
                     "train": ["music/a.wav"]}, workers=0, progress=False)
    assert not (tmp_path / "bad").exists()


def test_pack_flac_pieces_fit_and_hold_the_same_audio(built: tuple[Path, Corpus],
                                                      tmp_path: Path) -> None:
    _, corpus = built
    limit = 0.05
    summary = pack_corpus(corpus, tmp_path / "packed", max_mib=limit, progress=False)
    packed = Corpus.open(tmp_path / "packed")
    assert packed.storage == summary.storage == "flac"
    files = sorted((tmp_path / "packed" / "shards").iterdir())
    assert len(files) >= 6 and all(f.suffix == ".flac" for f in files)
    assert all(f.stat().st_size <= limit * 2**20 for f in files)
    assert summary.splits == corpus.summary().splits
    for r in corpus.files():
        p = next(q for q in packed.records if q.id == r.id)
        np.testing.assert_array_equal(packed.segment(p), corpus.segment(r))
        np.testing.assert_array_equal(packed.read(p, 5, 700), corpus.read(r, 5, 700))
    unpack_corpus(packed, tmp_path / "unpacked", progress=False)
    back = Corpus.open(tmp_path / "unpacked")
    assert back.storage == "npy"
    for r in corpus.files():
        q = next(q for q in back.records if q.id == r.id)
        np.testing.assert_array_equal(back.segment(q), corpus.segment(r))
    assert back.verify() == []


def test_opus_only_for_opus_rates(built: tuple[Path, Corpus], tmp_path: Path) -> None:
    _, corpus = built
    with pytest.raises(UnsupportedFormatError, match="pack it as FLAC"):
        pack_corpus(corpus, tmp_path / "opus", codec="opus", progress=False)
    assert not (tmp_path / "opus").exists()


def test_output_and_corpus_errors(built: tuple[Path, Corpus], tmp_path: Path) -> None:
    music, corpus = built
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(OutputExistsError):
        build_corpus([music], tmp_path / "full", workers=0, progress=False)
    with pytest.raises(AudioFileNotFoundError):
        build_corpus([tmp_path / "nope"], tmp_path / "c", workers=0, progress=False)
    with pytest.raises(SpecError):
        build_corpus([music], tmp_path / "c", splits=(0.5, 0.5, 0.5), progress=False)
    with pytest.raises(AudioFileNotFoundError):
        Corpus.open(tmp_path / "nope")
    with pytest.raises(CorpusError, match="incomplete build"):
        Corpus.open(tmp_path / "full")
    # damaged copies
    bad = tmp_path / "bad"
    shutil.copytree(corpus.path, bad)
    (bad / INDEX_NAME).write_text('{"id": "x"\n')
    with pytest.raises(CorpusError, match="corrupt"):
        Corpus.open(bad)
    shutil.rmtree(bad)
    shutil.copytree(corpus.path, bad)
    next((bad / "shards").iterdir()).unlink()
    with pytest.raises(CorpusError, match="shard missing"):
        Corpus.open(bad)
    meta = json.loads((corpus.path / META_NAME).read_text())
    assert meta["version"] == 1 and meta["sample_rate"] == 44100 and meta["channels"] == 2
    assert meta["splits"] == dict(zip(SPLITS, SPLIT_FRACTIONS, strict=True))
    assert meta["min_cutoff_hz"] == 16000.0 and meta["upband_version"]
    # overwrite replaces a complete corpus only when asked
    build_corpus([music / "a.wav"], tmp_path / "full", workers=0, overwrite=True,
                 progress=False)
    assert [r.id for r in Corpus.open(tmp_path / "full").records] == ["music/a.wav"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_mono_corpus_averages_channels(built: tuple[Path, Corpus], tmp_path: Path) -> None:
    music, _ = built
    build_corpus([music / "a.wav"], tmp_path / "mono", channels=1, sample_rate=22050,
                 workers=0, progress=False)
    mono = Corpus.open(tmp_path / "mono")
    (r,) = mono.files()
    x, sr = audio.read(music / "a.wav")
    ref = audio.resample(x.mean(axis=0, keepdims=True), sr, 22050)
    assert mono.segment(r).shape == (1, audio.resampled_length(x.shape[1], sr, 22050))
    assert np.abs(mono.segment(r) / 32768 - ref).max() <= 0.5 / 32768 + 1e-7


def test_split_list_files_and_exclude(built: tuple[Path, Corpus], tmp_path: Path) -> None:
    music, _ = built
    listing = tmp_path / "held-out.txt"
    listing.write_text("# held-out songs\ntest music/b.flac\nvalidation e.wav  # by path\n")
    lists = read_split_lists(listing)
    assert lists == {"test": ["music/b.flac"], "validation": ["e.wav"]}
    (tmp_path / "lists.json").write_text(json.dumps(lists))
    assert read_split_lists(tmp_path / "lists.json") == lists
    (tmp_path / "bad.txt").write_text("holdout music/b.flac\n")
    with pytest.raises(SpecError, match="unknown split"):
        read_split_lists(tmp_path / "bad.txt")
    assert parse_splits("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    with pytest.raises(SpecError):
        parse_splits("0.8,0.1")
    build_corpus([music], tmp_path / "c", split_lists=lists, exclude=["music/sub/*"],
                 workers=0, progress=False)
    records = {r.id: r for r in Corpus.open(tmp_path / "c").records}
    assert not [i for i in records if i.startswith("music/sub/")]
    assert records["music/b.flac"].split == "test"
    assert records["music/e.wav"].split == "validation"
