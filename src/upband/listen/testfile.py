"""The listening-test file: items (versions of one excerpt), and the tests to run on them.

A test file is JSON (what ``upband evaluate --listening-test`` writes) or TOML (the same keys, for
writing one by hand). Loading one is parsing data and checking it: nothing in it is executed,
and every audio path it names must resolve -- symbolic links followed -- to a file inside the
test file's own folder. Every problem is one line, ``<file>: <where>: <what>``
(:class:`BadTestFile`: an input that cannot be used, exit status 1). The keys, with their
defaults::

    format = "upband-listening-test"     # required
    version = 1                          # required
    title = "..."
    sample_rate = 44100                  # informative
    notes = ["..."]
    source = {...}                       # informative: the evaluate run it came from

    [[items]]                            # at least one
    id = "001-seen"                      # unique, [A-Za-z0-9._-]
    title = "a.wav, 12.0-22.0 s"
    condition = "Chebyshev1-6 (seen)"    # what the analysis groups by ("" for none)
      [[items.versions]]                 # at least one
      name = "reference"                 # unique in the item
      role = "reference"                 # reference | anchor | degraded | system
      path = "stimuli/001-seen/reference.flac"
      loudness_lufs = -18.2              # BS.1770-4; the page matches versions with it
      cutoff_hz = 22050                  # detected bandwidth, marked on the spectrogram
      metrics = {snr = 30.1}             # shown beside the spectrograms

    [[tests]]
    name = "mushra"                      # unique, [A-Za-z0-9._-]; the page is /test/<name>
    design = "mushra"                    # mushra | ab | mos | abx
    items = ["001-seen"]                 # default: every item
    versions = ["reference", "..."]      # mushra, mos: the stimuli (default: every version)
    reference = "reference"              # mushra: the open and the hidden reference
    mid_anchor = "anchor-7k"             # mushra: for BS.1534-3 post-screening
    pairs = [["model", "input"]]         # ab, abx
    repeats = 1                          # ab, abx: trials per pair and item
    loudness_match = true                # play every stimulus at the quietest one's loudness
    require_played = true                # every stimulus must be heard before submitting
    instructions = "..."
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upband.audio import is_audio_path
from upband.errors import SpecError, UpbandError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FORMAT = "upband-listening-test"
FORMAT_VERSION = 1
DESIGNS = ("mushra", "ab", "mos", "abx")
ROLES = ("reference", "anchor", "degraded", "system")
#: Names that appear in URLs and file names.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Largest test file read (bytes): a test file is a few kB per item.
MAX_BYTES = 20_000_000
#: What ``upband evaluate --listening-test`` puts in a test by default: files, excerpt (s).
DEFAULT_ITEMS = 4
DEFAULT_SECONDS = 10.0


class BadTestFile(UpbandError, ValueError):
    """A listening-test file that cannot be read or does not hold a valid test."""


@dataclass(frozen=True)
class Version:
    """One version of an item: an audio file and what is known of it."""

    name: str
    role: str
    path: Path
    loudness_lufs: float | None = None
    cutoff_hz: float | None = None
    metrics: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One excerpt in several versions (original, degraded, each system, anchors)."""

    id: str
    title: str
    condition: str
    versions: tuple[Version, ...]

    def version(self, name: str) -> Version:
        for v in self.versions:
            if v.name == name:
                return v
        raise KeyError(name)

    def names(self) -> list[str]:
        return [v.name for v in self.versions]


@dataclass(frozen=True)
class TestSpec:
    """One test of the file: its design and what it presents (see the module doc)."""

    __test__ = False  # not a pytest class

    name: str
    design: str
    items: tuple[str, ...]
    versions: tuple[str, ...] = ()
    reference: str | None = None
    mid_anchor: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    repeats: int = 1
    loudness_match: bool = True
    require_played: bool = True
    instructions: str = ""


@dataclass(frozen=True)
class ListeningTest:
    """A loaded, checked test file."""

    path: Path
    title: str
    items: tuple[Item, ...]
    tests: tuple[TestSpec, ...]
    sample_rate: int | None = None
    notes: tuple[str, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    def test(self, name: str) -> TestSpec:
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(name)


def parse_designs(text: str) -> tuple[str, ...]:
    """``"mushra,ab"`` -> the designs, in order; :class:`~upband.errors.SpecError` (a bad
    option) for an unknown one."""
    names = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    if not names or any(n not in DESIGNS for n in names):
        raise SpecError(f"--listening-test takes designs from {', '.join(DESIGNS)} "
                        f"(comma-separated), got {text!r}")
    return names


def is_test_path(path: Path) -> bool:
    """Whether ``path`` names a test file by its extension (``.json`` or ``.toml``)."""
    return path.suffix.lower() in (".json", ".toml")


class _Checker:
    """Reads typed values out of parsed JSON/TOML with one-line errors naming the place."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, what: str) -> BadTestFile:
        return BadTestFile(f"{self.path}: {where}: {what}" if where else
                           f"{self.path}: {what}")

    def get(self, obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
            default: Any = ...) -> Any:
        if key not in obj:
            if default is ...:
                raise self.fail(where, f"'{key}' is missing")
            return default
        value = obj[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else
                                                    (kind,)):
            raise self.fail(where, f"'{key}' must be {_kind_name(kind)}, not a boolean")
        if not isinstance(value, kind):
            raise self.fail(where, f"'{key}' must be {_kind_name(kind)}, got "
                                   f"{type(value).__name__}")
        return value

    def name(self, obj: Mapping[str, Any], key: str, where: str) -> str:
        value: str = self.get(obj, key, str, where)
        if not NAME.match(value):
            raise self.fail(where, f"'{key}' {value!r} must be letters, digits, '.', '_' or "
                                   "'-' (at most 100)")
        return value

    def number(self, value: Any, where: str) -> float | None:
        """A metric or measurement: a number, ``"inf"`` / ``"-inf"``, or null (NaN)."""
        if value is None:
            return None
        if value in ("inf", "-inf"):
            return math.inf if value == "inf" else -math.inf
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"must be a number, 'inf', '-inf' or null, got {value!r}")
        return float(value)

    def audio_path(self, text: str, where: str) -> Path:
        """``text`` relative to the test file's folder, which the real path must stay in."""
        root = self.path.parent.resolve()
        rel = Path(text)
        if rel.is_absolute() or not text:
            raise self.fail(where, f"path {text!r} must be relative to the test file's folder")
        real = (root / rel).resolve()
        if not real.is_relative_to(root):
            raise self.fail(where, f"path {text!r} leads outside the test file's folder "
                                   f"({root}); refused")
        if not real.is_file():
            raise self.fail(where, f"path {text!r}: no such file")
        if not is_audio_path(real):
            raise self.fail(where, f"path {text!r} is not an audio file upband reads")
        return real


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _parse(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadTestFile(f"{path}: no such test file") from None
    except IsADirectoryError:
        raise BadTestFile(f"{path}: is a folder, not a test file") from None
    except OSError as err:
        raise BadTestFile(f"{path}: cannot read ({err.strerror or err})") from None
    if len(raw) > MAX_BYTES:
        raise BadTestFile(f"{path}: larger than {MAX_BYTES // 1_000_000} MB; not a test file")
    try:
        text = raw.decode("utf-8")
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)

        def refuse(token: str) -> Any:
            raise ValueError(f"non-standard constant {token}")

        return json.loads(text, parse_constant=refuse)
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError and TOMLDecodeError
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BadTestFile(f"{path}: not valid {kind} ({message})") from None


def load_test(path: str | Path) -> ListeningTest:
    """Read and check a test file (module doc); :class:`BadTestFile` on any problem."""
    path = Path(path)
    doc = _parse(path)
    c = _Checker(path)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise c.fail("", f"not an upband listening test (no format = \"{FORMAT}\")")
    version = c.get(doc, "version", int, "")
    if version != FORMAT_VERSION:
        raise c.fail("", f"format version {version} is not supported (this upband reads "
                         f"{FORMAT_VERSION})")
    raw_items = c.get(doc, "items", list, "")
    if not raw_items:
        raise c.fail("", "'items' is empty")
    items = tuple(_item(c, raw, f"items[{i}]") for i, raw in enumerate(raw_items))
    ids = [it.id for it in items]
    dup = sorted({x for x in ids if ids.count(x) > 1})
    if dup:
        raise c.fail("items", f"item id(s) used twice: {', '.join(dup)}")
    by_id = {it.id: it for it in items}
    tests = tuple(_test(c, raw, f"tests[{i}]", by_id)
                  for i, raw in enumerate(c.get(doc, "tests", list, "", [])))
    names = [t.name for t in tests]
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise c.fail("tests", f"test name(s) used twice: {', '.join(dup)}")
    rate = c.get(doc, "sample_rate", int, "", None)
    notes = c.get(doc, "notes", list, "", [])
    if not all(isinstance(n, str) for n in notes):
        raise c.fail("notes", "must be a list of strings")
    return ListeningTest(path, c.get(doc, "title", str, "", path.stem), items, tests, rate,
                         tuple(notes), c.get(doc, "source", dict, "", {}))


def _item(c: _Checker, raw: Any, where: str) -> Item:
    if not isinstance(raw, dict):
        raise c.fail(where, "must be a table")
    item_id = c.name(raw, "id", where)
    where = f"item {item_id}"
    versions = []
    for j, v in enumerate(c.get(raw, "versions", list, where)):
        if not isinstance(v, dict):
            raise c.fail(f"{where}: versions[{j}]", "must be a table")
        name = c.name(v, "name", f"{where}: versions[{j}]")
        vwhere = f"{where}: version {name}"
        role = c.get(v, "role", str, vwhere, "system")
        if role not in ROLES:
            raise c.fail(vwhere, f"role {role!r} is not one of {', '.join(ROLES)}")
        metrics = c.get(v, "metrics", dict, vwhere, {})
        versions.append(Version(
            name, role, c.audio_path(c.get(v, "path", str, vwhere), vwhere),
            c.number(v.get("loudness_lufs"), f"{vwhere}: loudness_lufs"),
            c.number(v.get("cutoff_hz"), f"{vwhere}: cutoff_hz"),
            {str(k): c.number(x, f"{vwhere}: metrics.{k}") for k, x in metrics.items()}))
    if not versions:
        raise c.fail(where, "has no versions")
    names = [v.name for v in versions]
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise c.fail(where, f"version name(s) used twice: {', '.join(dup)}")
    return Item(item_id, c.get(raw, "title", str, where, item_id),
                c.get(raw, "condition", str, where, ""), tuple(versions))


def _names(c: _Checker, raw: Mapping[str, Any], key: str, where: str,
           default: list[str]) -> tuple[str, ...]:
    value = c.get(raw, key, list, where, default)
    if not all(isinstance(x, str) for x in value):
        raise c.fail(where, f"'{key}' must be a list of names")
    return tuple(value)


def _test(c: _Checker, raw: Any, where: str, items: Mapping[str, Item]) -> TestSpec:
    if not isinstance(raw, dict):
        raise c.fail(where, "must be a table")
    name = c.name(raw, "name", where)
    where = f"test {name}"
    design = c.get(raw, "design", str, where)
    if design not in DESIGNS:
        raise c.fail(where, f"design {design!r} is not one of {', '.join(DESIGNS)}")
    ids = _names(c, raw, "items", where, list(items))
    unknown = [i for i in ids if i not in items]
    if unknown or not ids:
        raise c.fail(where, f"unknown item(s) {', '.join(unknown)}" if unknown else "no items")
    chosen = [items[i] for i in ids]
    common = [n for n in chosen[0].names() if all(n in it.names() for it in chosen)]
    versions = _names(c, raw, "versions", where, common if design in ("mushra", "mos") else [])
    pairs_raw = c.get(raw, "pairs", list, where, [])
    if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
               and p[0] != p[1] for p in pairs_raw):
        raise c.fail(where, "'pairs' must be a list of two different version names each")
    pairs = tuple((str(p[0]), str(p[1])) for p in pairs_raw)
    reference = c.get(raw, "reference", str, where, "reference" if design == "mushra" else None)
    mid = c.get(raw, "mid_anchor", str, where, None)
    named = set(versions) | {x for p in pairs for x in p} | {reference, mid} - {None}
    missing = sorted(n for n in named if n not in common)
    if missing:
        raise c.fail(where, f"version(s) {', '.join(missing)} not in every item of the test")
    if design in ("mushra", "mos") and not versions:
        raise c.fail(where, "no versions to present")
    if design in ("ab", "abx") and not pairs:
        raise c.fail(where, f"a {design} test needs 'pairs'")
    if design == "mushra" and reference not in versions:
        raise c.fail(where, f"the reference {reference!r} must be among the versions (it is "
                            "the hidden reference)")
    if design == "mushra" and mid is not None and mid not in versions:
        raise c.fail(where, f"the mid anchor {mid!r} must be among the versions")
    repeats = c.get(raw, "repeats", int, where, 1)
    if not 1 <= repeats <= 100:
        raise c.fail(where, f"'repeats' must be from 1 to 100, got {repeats}")
    return TestSpec(name, design, ids, versions, reference if design == "mushra" else None,
                    mid, pairs, repeats, c.get(raw, "loudness_match", bool, where, True),
                    c.get(raw, "require_played", bool, where, True),
                    c.get(raw, "instructions", str, where, ""))
