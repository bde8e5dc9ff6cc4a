#!/usr/bin/env python3
"""Build upband's standard training corpus from the Debian music packages of docs/data.md.

    python scripts/build_standard_corpus.py --out /work/corpus
    python scripts/build_standard_corpus.py --out /work/corpus --unpacked /work/audio
    python scripts/build_standard_corpus.py --out /tmp/small --packages sonic-pi-samples asc-music
    python scripts/build_standard_corpus.py --out /work/corpus --unpacked /work/audio \
        --extra "/work/rendered::PD-score+MIT-soundfont"     # + scripts/render_scores.py's

For each package: use ``--unpacked DIR/PKG`` when it exists (a ``dpkg-deb -x`` tree), else the
tree unpacked before in ``--cache``, else ``apt-get download PKG`` into ``--cache`` and
``dpkg-deb -x`` it there (nothing is installed, no root needed). Ogg files inside ``.pk3`` zip
archives (ufoai-music) are extracted into ``--cache/extracted/PKG``. Each file's licence comes
from the package's ``usr/share/doc/PKG/copyright``: the last DEP-5 ``Files:`` stanza whose
pattern matches the file (patterns are matched against the end of the file's path; a pattern
naming an archive, e.g. ``drumkits/BJA_Pacific.h2drumkit``, matches the folder it was unpacked
to), else the ``Files: *`` stanza, else a Creative Commons licence named in a non-DEP-5 text,
else ``unknown``. Where that parser cannot read a copyright file, the package carries an
explicit licence rule (``Package.licences``, data in ``PACKAGES``): fretsonfire-songs-sectoid
grants its songs with the MIT permission notice in free text (the GPL it names covers only the
Debian packaging), so its songs are recorded as ``MIT``. A rule holds only while the copyright
file still contains its evidence phrase; otherwise the build stops, so a changed licence is
re-read rather than silently kept.

Selection: all audio files of each package except what is not music: the hyperrogue sound
effects (``sounds/``), sonic-pi's random-number buffer (``buffers/rand-stream.wav``) and, in
lincity-ng-data, everything outside its music folder (``Package.only``: the game's sound
effects). The corpus builder then skips files whose measured bandwidth is below the cutoff
threshold (16 kHz at 44.1 kHz: asc-music's 22 kHz MP3s, the duller game tracks and drum hits),
byte-identical duplicates (drascula-music ships every track twice) and undecodable files.

Held-out policy: splits are by whole file, by a hash of ``PKG/path/in/package`` (90 / 5 / 5 %),
so the same file lands in the same split on every machine and every rebuild. The fretsonfire
song packs ship each song as a folder of stems of one performance (``song.ogg``, the backing
track, and ``guitar.ogg``, the guitar part): for packages with ``Package.group_by_folder``,
every file of a folder is forced (through the builder's split lists) into the split that the
folder's own id ``PKG/path/of/folder`` hashes to, with the same hash and fractions, so no song
is split across train and test. Never tune or evaluate on ``validation`` / ``test`` files you
trained on. List the test files with::

    python -c "import json,sys; [print(r['id'], r['licence']) for r in map(json.loads,
        open(sys.argv[1])) if r['split'] == 'test' and not r['skipped']]" CORPUS/index.jsonl

or ``jq -r 'select(.split == "test" and .skipped == null) | .id' CORPUS/index.jsonl``.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from upband.audio import is_audio_path
from upband.data.corpus import (
    DEFAULT_SPLITS,
    Corpus,
    FileRecord,
    build_corpus,
    default_min_cutoff,
    find_sources,
    split_of,
)
from upband.errors import UpbandError


@dataclass(frozen=True)
class LicenceRule:
    """An explicit licence for the files of a package matching ``pattern`` (a glob on the path in
    the package), for a copyright file the parser cannot read. ``evidence``: a phrase of that
    copyright file the rule was read from (compared with whitespace collapsed); when the file
    no longer contains it the build stops."""

    pattern: str
    licence: str
    evidence: str


@dataclass(frozen=True)
class Package:
    """A Debian package of the corpus. ``exclude``: globs on paths in the package of files that
    are not music; ``only``: when given, keep only the files matching one of these globs;
    ``group_by_folder``: every file of a folder takes the split of the folder's id (stems of one
    song); ``licences``: explicit licence rules, checked before the copyright file's parser."""

    name: str
    exclude: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    group_by_folder: bool = False
    licences: tuple[LicenceRule, ...] = ()


FOF_SONGS = "usr/share/games/fretsonfire/data/songs/*"

#: The standard corpus. Never add ``wesnoth-1.16-music``: it is reserved for independent
#: evaluation (docs/data.md, "Held-out rules") and must stay unseen by every model.
PACKAGES = {p.name: p for p in (
    Package("warzone2100-music"),
    Package("ufoai-music"),
    Package("singularity-music"),
    Package("hyperrogue-music", exclude=("usr/share/hyperrogue/sounds/*",)),
    Package("drascula-music"),
    Package("asc-music"),
    Package("sonic-pi-samples", exclude=("usr/share/sonic-pi/buffers/*",)),
    Package("hydrogen-drumkits"),
    Package("fretsonfire-songs-muldjord", group_by_folder=True),
    Package("fretsonfire-songs-sectoid", group_by_folder=True, licences=(
        LicenceRule(FOF_SONGS, "MIT", "The songs, performances and fret files are all Copyright "
                    "(c) 2006/2007 Carlos Viola Iborra <karuritosu@gmail.com> Permission is "
                    "hereby granted, free of charge"),)),
    Package("lincity-ng-data", only=("usr/share/games/lincity-ng/music/*",)),
)}
#: Packages that must never enter a training corpus.
RESERVED = frozenset({"wesnoth-1.16-music"})
if RESERVED & PACKAGES.keys():
    raise RuntimeError(f"reserved evaluation package(s) in PACKAGES: {RESERVED & PACKAGES.keys()}")

#: Archives named in copyright files that Debian ships unpacked (a folder of the same stem).
ARCHIVE_EXTENSIONS = frozenset({"h2drumkit", "pk3", "zip", "tar", "tgz", "gz", "bz2", "xz", "7z"})
DEFAULT_CACHE = Path("~/.cache/upband/debs").expanduser()


class ScriptError(Exception):
    """A failure of this script (download, unpacking) reported as one line."""


# --------------------------------------------------------------------------------------------
# packages
# --------------------------------------------------------------------------------------------


def _run(cmd: Sequence[str], cwd: Path | None = None) -> None:
    try:
        subprocess.run(list(cmd), cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise ScriptError(f"{cmd[0]} not found: run this on Debian/Ubuntu") from None
    except subprocess.CalledProcessError as err:
        last = (err.stderr or err.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise ScriptError(f"{' '.join(cmd)} failed: {last[0]}") from None


def package_tree(name: str, cache: Path, unpacked: Path | None) -> Path:
    """The unpacked tree of ``name``: ``unpacked/name``, ``cache/unpacked/name`` or freshly
    downloaded and unpacked into the cache."""
    if unpacked is not None and (unpacked / name).is_dir():
        return unpacked / name
    tree = cache / "unpacked" / name
    if tree.is_dir():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{name}_*.deb"))
    if not debs:
        print(f"{name}: apt-get download", file=sys.stderr)
        _run(["apt-get", "download", name], cwd=cache)
        debs = sorted(cache.glob(f"{name}_*.deb"))
        if not debs:
            raise ScriptError(f"apt-get download {name} left no {name}_*.deb in {cache}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache))
    try:
        _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)])
        tree.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, tree)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tree


def extract_archives(name: str, tree: Path, cache: Path) -> Path | None:
    """Extract the audio members of every ``.pk3`` (zip) in ``tree`` into
    ``cache/extracted/name/<pk3 stem>/...``; None when there are none."""
    archives = sorted(p for p in tree.rglob("*.pk3") if p.is_file())
    if not archives:
        return None
    dest = cache / "extracted" / name
    stamp = json.dumps([[str(p.relative_to(tree)), p.stat().st_size] for p in archives])
    if (dest / ".complete").is_file() and (dest / ".complete").read_text() == stamp:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest.parent))
    try:
        for archive in archives:
            with zipfile.ZipFile(archive) as z:
                for member in z.infolist():
                    target = Path(member.filename)
                    if member.is_dir() or not is_audio_path(target) or ".." in target.parts \
                            or target.is_absolute():
                        continue
                    out = tmp / archive.stem / target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(member) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
        (tmp / ".complete").write_text(stamp)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


# --------------------------------------------------------------------------------------------
# licences
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stanza:
    patterns: tuple[str, ...]
    licence: str


def parse_copyright(text: str) -> tuple[list[Stanza], str | None]:
    """DEP-5 ``Files:`` stanzas (in order) and a fallback licence for non-DEP-5 texts."""
    stanzas: list[Stanza] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields.setdefault(key, value.strip())
        if "files" in fields and "license" in fields:
            licence = fields["license"].splitlines()[0].strip()
            if licence:
                stanzas.append(Stanza(tuple(fields["files"].split()), licence))
    fallback = None
    if not stanzas and "Creative Commons" in text and "Attribution" in text:
        elements = ["BY"] + [code for word, code in (("NonCommercial", "NC"),
                                                      ("NoDerivs", "ND"),
                                                      ("ShareAlike", "SA")) if word in text]
        version = re.search(r"Attribution[-\w]* (\d\.\d)", text)
        fallback = "CC-" + "-".join(elements) + (f"-{version.group(1)}" if version else "")
    return stanzas, fallback


def _matches(relpath: str, pattern: str) -> bool:
    """A DEP-5 pattern (from the source package) against a path in the binary package: the
    pattern, or any tail of it with a literal component, matches the end of the path; an
    archive (``x/Kit.h2drumkit``) matches the folder it was unpacked to (``.../Kit*/...``)."""
    if pattern == "*":
        return True
    parts = relpath.split("/")
    pat = pattern.strip("/").split("/")
    stem, dot, ext = pat[-1].rpartition(".")
    if dot and ext.lower() in ARCHIVE_EXTENSIONS:
        return any(fnmatch.fnmatchcase(d, stem) or fnmatch.fnmatchcase(d, stem + " *")
                   or fnmatch.fnmatchcase(d, stem + "_*") for d in parts[:-1])
    for k in range(len(pat), 0, -1):
        tail = pat[-k:]
        if not any(re.fullmatch(r"[^*?\[\]]+", q) for q in tail):
            break  # a tail of wildcards only ("*") would match any file
        if len(tail) <= len(parts) and all(fnmatch.fnmatchcase(p, q) for p, q in
                                           zip(parts[-len(tail):], tail, strict=True)):
            return True
    return False


def licence_of(relpath: str, stanzas: Sequence[Stanza], fallback: str | None) -> str:
    """The last stanza matching ``relpath`` wins (DEP-5); ``*`` stanzas match everything."""
    found = None
    for stanza in stanzas:
        if stanza.patterns and not any(p.startswith("debian/") for p in stanza.patterns) \
                and any(_matches(relpath, p) for p in stanza.patterns):
            found = stanza.licence
    return found or fallback or "unknown"


def _collapse(text: str) -> str:
    return " ".join(text.split())


def check_licence_rules(package: Package, copyright_text: str) -> None:
    """``ScriptError`` when a licence rule's evidence is no longer in the copyright file."""
    for rule in package.licences:
        if _collapse(rule.evidence) not in _collapse(copyright_text):
            raise ScriptError(f"{package.name}: the copyright file no longer says "
                              f"{rule.evidence[:40]!r}...: re-read it and update the licence "
                              f"rule for {rule.pattern} ({rule.licence})")


def file_licence(package: Package, relpath: str, stanzas: Sequence[Stanza],
                 fallback: str | None) -> str:
    """The first of the package's licence rules matching ``relpath``, else :func:`licence_of`."""
    for rule in package.licences:
        if fnmatch.fnmatchcase(relpath, rule.pattern):
            return rule.licence
    return licence_of(relpath, stanzas, fallback)


# --------------------------------------------------------------------------------------------
# selection and splits
# --------------------------------------------------------------------------------------------


def is_selected(package: Package, relpath: str) -> bool:
    """Whether a file (path in the package) is music the corpus takes."""
    if any(fnmatch.fnmatchcase(relpath, p) for p in package.exclude):
        return False
    return not package.only or any(fnmatch.fnmatchcase(relpath, p) for p in package.only)


def folder_split(source: str, relpath: str) -> str:
    """The split of the folder holding ``relpath``: the corpus hash of the folder's id."""
    return split_of(f"{source}/{posixpath.dirname(relpath)}", DEFAULT_SPLITS)


@dataclass
class Selection:
    """What the packages give the corpus build (``build_corpus`` arguments)."""

    sources: list[str]
    licences: dict[str, str]
    exclude: list[str]
    split_lists: dict[str, list[str]]


def select_package(package: Package, roots: Sequence[Path], copyright_text: str,
                   into: Selection | None = None) -> Selection:
    """Add ``package``'s files under ``roots`` (its unpacked tree, extracted archives) to
    ``into``: one source per root, each selected file's licence, exclusion patterns for the
    rest (exact file ids, glob-escaped) and, with ``group_by_folder``, split lists forcing each
    file into its folder's split. Files are found as the corpus builder finds them."""
    sel = into if into is not None else Selection([], {}, [], {})
    check_licence_rules(package, copyright_text)
    stanzas, fallback = parse_copyright(copyright_text)
    for src in find_sources([str(r) for r in roots]):
        sel.exclude += [f"{src.name}/{pattern}" for pattern in package.exclude]
        for path in src.files:
            rel = path.relative_to(src.root).as_posix()
            file_id = glob.escape(f"{src.name}/{rel}")
            if not is_selected(package, rel):
                if package.only:
                    sel.exclude.append(file_id)
                continue
            sel.licences[str(path)] = file_licence(package, rel, stanzas, fallback)
            if package.group_by_folder:
                sel.split_lists.setdefault(folder_split(src.name, rel), []).append(file_id)
        default = licence_of("*", [s for s in stanzas if "*" in s.patterns], fallback)
        sel.sources.append(f"{src.root}::{default}")
    return sel


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", "-o", required=True, type=Path, help="corpus folder to create")
    p.add_argument("--packages", nargs="+", choices=sorted(PACKAGES), default=list(PACKAGES),
                   metavar="PKG", help=f"subset of: {', '.join(PACKAGES)}")
    p.add_argument("--unpacked", type=Path, default=None,
                   help="folder holding already unpacked packages as DIR/PKG (e.g. /work/audio)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help=f"downloads, unpacked trees and extracted archives ({DEFAULT_CACHE})")
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("--channels", type=int, default=2, choices=(1, 2))
    p.add_argument("--min-cutoff", type=float, default=None,
                   help="skip files whose measured bandwidth is below this (Hz; default 16 kHz "
                        "at 44.1 kHz, the same fraction of Nyquist at other rates)")
    p.add_argument("--workers", "-j", type=int, default=None)
    p.add_argument("--force", "-f", action="store_true", help="replace an existing corpus")
    p.add_argument("--extra", action="append", default=[], metavar="FOLDER::LICENCE",
                   help="another source of full-band music with the licence of all its files "
                   "(e.g. the pieces scripts/render_scores.py renders); repeatable")
    p.add_argument("--no-progress", action="store_true")
    return p


def report(records: Sequence[FileRecord], sample_rate: int) -> str:
    """Per package: files seen, packed, skipped by kind, hours per split."""
    by_source: dict[str, list[FileRecord]] = defaultdict(list)
    for r in records:
        by_source[r.source].append(r)
    lines = [f"{'package':<26} {'files':>5} {'packed':>6} {'train h':>8} {'val h':>7} "
             f"{'test h':>7}  skipped"]
    for name, recs in sorted(by_source.items()):
        hours: Counter[str] = Counter()
        for r in recs:
            if r.packed:
                hours[r.split] += r.frames
        skipped = Counter(r.skip_kind for r in recs if r.skipped)
        lines.append(f"{name:<26} {len(recs):5d} {sum(r.packed for r in recs):6d} "
                     + " ".join(f"{hours[s] / sample_rate / 3600:{w}.3f}" for s, w in
                                (("train", 8), ("validation", 7), ("test", 7))) + "  "
                     + (", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "-"))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    start = time.monotonic()
    sel = Selection([], {}, [], {})
    try:
        for name in args.packages:
            tree = package_tree(name, args.cache.expanduser(), args.unpacked)
            copyright_file = tree / "usr/share/doc" / name / "copyright"
            text = copyright_file.read_text(errors="replace") if copyright_file.is_file() else ""
            roots = [tree]
            extracted = extract_archives(name, tree, args.cache.expanduser())
            if extracted is not None:
                roots.append(extracted)
            before = set(sel.licences)
            select_package(PACKAGES[name], roots, text, into=sel)
            counts = Counter(v for k, v in sel.licences.items() if k not in before)
            print(f"{name}: {tree}" + (f" + {extracted}" if extracted else "") + "; licences "
                  + ", ".join(f"{k} ({v})" for k, v in counts.most_common()), file=sys.stderr)
        for extra in args.extra:
            folder, sep, licence = extra.partition("::")
            if not sep or not licence or not Path(folder).is_dir():
                raise ScriptError(f"--extra {extra!r}: give an existing FOLDER::LICENCE")
            sel.sources.append(extra)
        prep = time.monotonic() - start
        summary = build_corpus(
            sel.sources, args.out, sample_rate=args.sample_rate, channels=args.channels,
            min_cutoff_hz=args.min_cutoff, split_lists=sel.split_lists or None,
            workers=args.workers, licences=sel.licences, exclude=sel.exclude,
            overwrite=args.force, progress=not args.no_progress)
    except (UpbandError, ScriptError) as err:
        print(f"build_standard_corpus: error: {err}", file=sys.stderr)
        return 2
    corpus = Corpus.open(args.out)
    cutoff = args.min_cutoff if args.min_cutoff is not None else default_min_cutoff(
        args.sample_rate)
    print(summary.format())
    print(report(corpus.records, corpus.sample_rate))
    print(f"min cutoff {cutoff:g} Hz; preparation {prep:.0f} s, total wall time "
          f"{time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
