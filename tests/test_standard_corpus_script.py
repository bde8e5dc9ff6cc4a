"""scripts/build_standard_corpus.py on small made-up package trees (tmp_path): licences from
copyright texts like those of the Debian packages it uses, the selection of music files, and
splits that keep every stem of a song in one split. No network, no apt."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from upband.data.corpus import Corpus, split_of
from upband.data.corpus.splits import matching

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_standard_corpus.py"
SONGS = "usr/share/games/fretsonfire/data/songs"
LINCITY = "usr/share/games/lincity-ng"

MULDJORD_COPYRIGHT = """\
This package was debianized by a maintainer on Sun Mar  1 15:42:26 GMT 2009

Copyright:

The songs, performances and fret files are all Copyright (c) 2009  El Senator
and are licenced under the terms of the Creative Commons
Attribution ShareAlike licence 3.0:

Creative Commons Legal Code
Attribution-ShareAlike 3.0 Unported

Packaging:

The Debian packaging is licensed under the Apache License 2.0.
"""

SECTOID_COPYRIGHT = """\
This package was debianized by a maintainer on Fri, 11 May 2007 13:29:26 +0100.

Copyright:

The songs, performances and fret files are all Copyright (c) 2006/2007  Carlos
Viola Iborra <karuritosu@gmail.com>

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction.

Packaging:

The Debian packaging is (C) 2006-2007 a maintainer and is licensed under the GPL.
"""

LINCITY_COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: LinCityNG

Files: *
Copyright: 1995-1997, I J Peters
License: GPL-2+
Comment:
 The models, SVG images and sound effects are dual-licensed.

Files: src/tinygettext/findlocale.*
License: MIT
Copyright: 2004, Adam D. Moss

Files: data/fonts/sans.ttf
Copyright: 2003, Bitstream, Inc
License: Bitstream-Vera-Fonts-Copyright

Files: debian/*
Copyright: 2005-2006, a maintainer
License: GPL-2+

License: GPL-2+
 This program is free software.
"""


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_standard_corpus", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _tree(root: Path, name: str, copyright_text: str, files: list[str]) -> Path:
    """A fake ``dpkg-deb -x`` tree of package ``name`` with empty files (or real audio when
    the caller writes them afterwards)."""
    tree = root / name
    doc = tree / "usr/share/doc" / name
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(copyright_text)
    for rel in files:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(b"")
    return tree


def _split_song(source: str, stems: tuple[str, ...]) -> str:
    """A song folder name whose stems' per-file hash splits differ, so grouping matters."""
    for i in range(1000):
        folder = f"{SONGS}/band/Song {i}"
        if len({split_of(f"{source}/{folder}/{s}") for s in stems}) > 1:
            return folder
    raise AssertionError("no song folder with differing per-file splits")


def test_muldjord_text_gives_cc_by_sa_3(script: ModuleType, tmp_path: Path) -> None:
    name = "fretsonfire-songs-muldjord"
    files = [f"{SONGS}/muldjord/armygeddon/{f}" for f in ("song.ogg", "guitar.ogg", "notes.mid")]
    tree = _tree(tmp_path, name, MULDJORD_COPYRIGHT, files)
    sel = script.select_package(script.PACKAGES[name], [tree], MULDJORD_COPYRIGHT)
    base = tree.resolve() / SONGS / "muldjord/armygeddon"
    assert sel.licences == {str(base / "guitar.ogg"): "CC-BY-SA-3.0",
                            str(base / "song.ogg"): "CC-BY-SA-3.0"}
    assert sel.sources == [f"{tree.resolve()}::CC-BY-SA-3.0"]


def test_sectoid_songs_are_mit_by_explicit_rule(script: ModuleType, tmp_path: Path) -> None:
    name = "fretsonfire-songs-sectoid"
    rel = f"{SONGS}/sectoid/Feelings/song.ogg"
    tree = _tree(tmp_path, name, SECTOID_COPYRIGHT, [rel])
    # the parser alone reads nothing here (the GPL it mentions is the packaging's) ...
    assert script.licence_of(rel, *script.parse_copyright(SECTOID_COPYRIGHT)) == "unknown"
    # ... so the package's rule gives the songs' own permission notice: MIT
    sel = script.select_package(script.PACKAGES[name], [tree], SECTOID_COPYRIGHT)
    assert sel.licences == {str(tree.resolve() / rel): "MIT"}


def test_licence_rule_stops_when_its_evidence_is_gone(script: ModuleType,
                                                      tmp_path: Path) -> None:
    name = "fretsonfire-songs-sectoid"
    changed = SECTOID_COPYRIGHT.replace("Permission is hereby granted", "All rights reserved")
    tree = _tree(tmp_path, name, changed, [f"{SONGS}/sectoid/Feelings/song.ogg"])
    with pytest.raises(script.ScriptError, match="re-read it and update the licence rule"):
        script.select_package(script.PACKAGES[name], [tree], changed)


def test_lincity_keeps_only_its_music(script: ModuleType, tmp_path: Path) -> None:
    name = "lincity-ng-data"
    music = [f"{LINCITY}/music/default/01 - pronobozo - lincity.ogg",
             f"{LINCITY}/music/default/02 - Robert van Herk - City Blues.ogg"]
    effects = [f"{LINCITY}/sounds/Blacksmith1.wav", f"{LINCITY}/sounds/Fire [2].wav",
               f"{LINCITY}/gui/click.ogg"]
    tree = _tree(tmp_path, name, LINCITY_COPYRIGHT, [*music, *effects, f"{LINCITY}/colour.pal"])
    sel = script.select_package(script.PACKAGES[name], [tree], LINCITY_COPYRIGHT)
    root = tree.resolve()
    assert sel.licences == {str(root / rel): "GPL-2+" for rel in music}
    assert sel.split_lists == {}
    # the exclusion patterns (exact, glob-escaped ids) leave out the effects and only them
    for rel in effects:
        assert matching(f"{name}/{rel}", rel, sel.exclude), rel
    for rel in music:
        assert not matching(f"{name}/{rel}", rel, sel.exclude), rel
    assert len(sel.exclude) == len(effects)


def test_grouped_package_forces_each_song_into_its_folder_split(script: ModuleType,
                                                                tmp_path: Path) -> None:
    name = "fretsonfire-songs-sectoid"
    stems = ("guitar.ogg", "rhythm.ogg", "song.ogg")
    folder = _split_song(name, stems)
    tree = _tree(tmp_path, name, SECTOID_COPYRIGHT, [f"{folder}/{s}" for s in stems])
    sel = script.select_package(script.PACKAGES[name], [tree], SECTOID_COPYRIGHT)
    want = split_of(f"{name}/{folder}")
    assert sel.split_lists == {want: [f"{name}/{folder}/{s}" for s in stems]}
    assert any(split_of(f"{name}/{folder}/{s}") != want for s in stems)


def _noise(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.random.default_rng(seed).uniform(-0.3, 0.3, (8820, 2)).astype(np.float32)
    sf.write(path, audio, 44100)


def test_build_keeps_stems_together_and_other_files_per_file(script: ModuleType,
                                                             tmp_path: Path) -> None:
    """The whole script (``--unpacked``, no apt): a grouped package's song folder lands in one
    split; a package without grouping keeps each file's own hash split."""
    fof, pi = "fretsonfire-songs-sectoid", "sonic-pi-samples"
    stems = ("guitar.ogg", "song.ogg")
    folder = _split_song(fof, stems)
    fof_tree = _tree(tmp_path / "unpacked", fof, SECTOID_COPYRIGHT, [])
    for seed, stem in enumerate(stems):
        _noise(fof_tree / folder / stem, seed)
    samples = "usr/share/sonic-pi/samples"
    names = next([a, b] for i in range(1000) for a, b in [(f"loop_{i}.wav", f"loop_{i}b.wav")]
                 if split_of(f"{pi}/{samples}/{a}") != split_of(f"{pi}/{samples}/{b}"))
    pi_tree = _tree(tmp_path / "unpacked", pi, "Files: *\nLicense: CC0-1.0\n", [])
    for seed, rel in enumerate([*(f"{samples}/{n}" for n in names),
                                "usr/share/sonic-pi/buffers/rand-stream.wav"], start=10):
        _noise(pi_tree / rel, seed)
    out = tmp_path / "corpus"
    rc = script.main(["--out", str(out), "--packages", fof, pi, "--unpacked",
                      str(tmp_path / "unpacked"), "--cache", str(tmp_path / "cache"),
                      "--min-cutoff", "0", "--workers", "0", "--no-progress"])
    assert rc == 0
    records = {r.id: r for r in Corpus.open(out).records}
    fof_ids = {f"{fof}/{folder}/{s}" for s in stems}
    pi_ids = {f"{pi}/{samples}/{n}" for n in names}
    assert set(records) == fof_ids | pi_ids  # the random-number buffer is not indexed
    assert {records[i].split for i in fof_ids} == {split_of(f"{fof}/{folder}")}
    assert {records[i].licence for i in fof_ids} == {"MIT"}
    assert {i: records[i].split for i in pi_ids} == {i: split_of(i) for i in pi_ids}
    assert len({records[i].split for i in pi_ids}) == 2
    assert {records[i].licence for i in pi_ids} == {"CC0-1.0"}


def test_reserved_evaluation_package_is_refused(script: ModuleType, tmp_path: Path) -> None:
    assert "wesnoth-1.16-music" in script.RESERVED
    assert "wesnoth-1.16-music" not in script.PACKAGES
    with pytest.raises(SystemExit) as err:
        script.main(["--out", str(tmp_path / "c"), "--packages", "wesnoth-1.16-music"])
    assert err.value.code == 2


def test_existing_packages_are_not_grouped(script: ModuleType) -> None:
    existing = ["warzone2100-music", "ufoai-music", "singularity-music", "hyperrogue-music",
                "drascula-music", "asc-music", "sonic-pi-samples", "hydrogen-drumkits"]
    assert [script.PACKAGES[n].group_by_folder for n in existing] == [False] * 8
    grouped = sorted(n for n, p in script.PACKAGES.items() if p.group_by_folder)
    assert grouped == ["fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid"]
