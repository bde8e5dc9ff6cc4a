"""The results database: SQLite, one row per rating.

Tables (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`):

* ``tests``: each test run from this database -- name, design, the hidden reference and mid
  anchor (MUSHRA), the versions or pairs (JSON) and the test file it came from, so that the
  analysis needs nothing but the database;
* ``participants``: token, test, when they started;
* ``plan``: each participant's trials in their order, with the stimuli in page-slot order
  (JSON), written when the participant starts: a reload resumes the same plan;
* ``ratings``: one row per rating -- participant, test, design, trial, item, condition, the
  trial's position in the participant's session (``position``), the stimulus (version name)
  and its slot on the page (``slot``), ``value``, ``answer`` (AB: the preferred version; ABX:
  the one chosen as X), the server's UTC time and the milliseconds the trial was open.

A trial is saved whole in one transaction and only once (a second submission is refused), so a
page reloaded in the middle of a trial loses nothing already saved and saves nothing twice.
Reading a database runs no code from it: it is tables of numbers and text.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upband.common.clock import utcnow
from upband.errors import SpecError
from upband.listen.designs import Planned, Row, Trial, plan
from upband.listen.testfile import NAME, ListeningTest, TestSpec

SCHEMA_VERSION = 1
#: The ``application_id`` pragma that marks a database as upband's ("UPBL").
APPLICATION_ID = 0x5550424C

SCHEMA = """
CREATE TABLE IF NOT EXISTS tests (
    name TEXT PRIMARY KEY, design TEXT NOT NULL, reference TEXT, mid_anchor TEXT,
    spec TEXT NOT NULL, test_file TEXT NOT NULL, title TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    token TEXT NOT NULL, test TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (token, test));
CREATE TABLE IF NOT EXISTS plan (
    participant TEXT NOT NULL, test TEXT NOT NULL, position INTEGER NOT NULL,
    trial TEXT NOT NULL, item TEXT NOT NULL, condition TEXT NOT NULL, stimuli TEXT NOT NULL,
    PRIMARY KEY (participant, test, position));
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    participant TEXT NOT NULL, test TEXT NOT NULL, design TEXT NOT NULL, trial TEXT NOT NULL,
    item TEXT NOT NULL, condition TEXT NOT NULL, position INTEGER NOT NULL,
    stimulus TEXT NOT NULL, slot INTEGER NOT NULL, value REAL NOT NULL, answer TEXT NOT NULL,
    time TEXT NOT NULL, elapsed_ms INTEGER,
    UNIQUE (participant, test, position, slot));
"""

#: The columns of ``ratings`` in table order (the CSV export adds ``excluded``).
RATING_COLUMNS = ("participant", "test", "design", "trial", "item", "condition", "position",
                  "stimulus", "slot", "value", "answer", "time", "elapsed_ms")


class AlreadySaved(SpecError):
    """The trial was submitted before (a second tab, a double click)."""


@dataclass(frozen=True)
class Progress:
    """Where a participant stands: the next position to rate (``total`` when done)."""

    token: str
    test: str
    next_position: int
    total: int

    @property
    def done(self) -> bool:
        return self.next_position >= self.total


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    try:
        if read_only:
            con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        else:
            con = sqlite3.connect(path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        app = con.execute("PRAGMA application_id").fetchone()[0]
    except sqlite3.Error as err:
        raise SpecError(f"{path}: not an upband results database ({err})") from None
    if app not in (0, APPLICATION_ID) or (read_only and app != APPLICATION_ID):
        con.close()
        raise SpecError(f"{path}: not an upband results database")
    return con


class Store:
    """The results database of one listening-test file (created on first use)."""

    def __init__(self, path: str | Path, test: ListeningTest | None = None) -> None:
        self.path = Path(path)
        self.test = test
        if test is not None:
            self._create(test)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(_connect(self.path)) as con:
            yield con

    def _create(self, test: ListeningTest) -> None:
        with self._db() as con:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise SpecError(f"{self.path}: results database of schema {version}; this "
                                f"upband writes {SCHEMA_VERSION}")
            con.executescript(SCHEMA)
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for spec in test.tests:
                row = (spec.name, spec.design, spec.reference, spec.mid_anchor,
                       json.dumps({"versions": list(spec.versions),
                                   "pairs": [list(p) for p in spec.pairs],
                                   "items": list(spec.items)}),
                       str(test.path.resolve()), test.title)
                old = con.execute("SELECT design, spec FROM tests WHERE name = ?",
                                  (spec.name,)).fetchone()
                if old is not None and tuple(old) != (row[1], row[4]):
                    raise SpecError(
                        f"{self.path}: test {spec.name!r} was run here with other stimuli; "
                        "use another --db for the changed test")
                con.execute("INSERT OR IGNORE INTO tests VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    def _spec(self, name: str) -> TestSpec:
        if self.test is None:
            raise SpecError("no test file loaded")
        try:
            return self.test.test(name)
        except KeyError:
            raise SpecError(f"no test named {name!r}") from None

    def start(self, test_name: str, token: str | None = None) -> str:
        """Register a participant (a new random token unless ``token`` is given) and store
        their plan; returns the token. Starting again with the same token changes nothing."""
        spec = self._spec(test_name)
        while token is None:  # a new participant: a random token no one has yet
            token = secrets.token_hex(4)
            with self._db() as con:
                if con.execute("SELECT 1 FROM participants WHERE token = ?",
                               (token,)).fetchone() is not None:
                    token = None
        if not NAME.match(token):
            raise SpecError("a participant token is letters, digits, '.', '_' or '-'")
        assert self.test is not None
        conditions = {it.id: it.condition for it in self.test.items}
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                known = con.execute("SELECT 1 FROM participants WHERE token = ? AND test = ?",
                                    (token, test_name)).fetchone()
                if known is None:
                    con.execute("INSERT INTO participants VALUES (?, ?, ?)",
                                (token, test_name, utcnow()))
                    con.executemany(
                        "INSERT INTO plan VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(token, test_name, p.position, p.trial.id, p.trial.item,
                          conditions[p.trial.item], json.dumps(list(p.order)))
                         for p in plan(spec, token)])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return token

    def planned(self, test_name: str, token: str) -> list[Planned]:
        """The participant's stored plan (empty for an unknown participant)."""
        with self._db() as con:
            rows = con.execute("SELECT position, trial, item, stimuli FROM plan WHERE "
                               "participant = ? AND test = ? ORDER BY position",
                               (token, test_name)).fetchall()
        out = []
        for position, trial, item, stimuli in rows:
            order = tuple(json.loads(stimuli))
            out.append(Planned(position, Trial(trial, item, tuple(dict.fromkeys(order))),
                               order))
        return out

    def progress(self, test_name: str, token: str) -> Progress:
        """The first position of the plan not yet rated."""
        with self._db() as con:
            total = con.execute("SELECT COUNT(*) FROM plan WHERE participant = ? AND test = ?",
                                (token, test_name)).fetchone()[0]
            done = {r[0] for r in con.execute(
                "SELECT DISTINCT position FROM ratings WHERE participant = ? AND test = ?",
                (token, test_name))}
        nxt = next((p for p in range(total) if p not in done), total)
        return Progress(token, test_name, nxt, total)

    def save(self, test_name: str, token: str, planned: Planned, rows: Sequence[Row],
             elapsed_ms: int | None = None) -> None:
        """Save one trial's rows in one transaction; :class:`AlreadySaved` if it was."""
        spec = self._spec(test_name)
        assert self.test is not None
        condition = self.test.item(planned.trial.item).condition
        now = utcnow()
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                if con.execute("SELECT 1 FROM ratings WHERE participant = ? AND test = ? AND "
                               "position = ?", (token, test_name, planned.position)
                               ).fetchone() is not None:
                    raise AlreadySaved(f"trial {planned.position + 1} was already submitted")
                con.executemany(
                    "INSERT INTO ratings (participant, test, design, trial, item, condition, "
                    "position, stimulus, slot, value, answer, time, elapsed_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(token, test_name, spec.design, planned.trial.id, planned.trial.item,
                      condition, planned.position, r.stimulus, r.slot, r.value, r.answer, now,
                      elapsed_ms) for r in rows])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise


@dataclass(frozen=True)
class Results:
    """Everything in a results database, as plain rows (for the analysis)."""

    tests: list[dict[str, Any]]
    ratings: list[dict[str, Any]]
    plans: list[dict[str, Any]]


def read_results(path: str | Path) -> Results:
    """Read a results database (opened read-only); ``SpecError`` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such results database")
    try:
        with closing(_connect(path, read_only=True)) as con:
            con.row_factory = sqlite3.Row
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise SpecError(f"{path}: results database of schema {version}; this upband "
                                f"reads {SCHEMA_VERSION}")
            tests = [dict(r) for r in con.execute("SELECT * FROM tests ORDER BY name")]
            for t in tests:
                t.update(json.loads(t.pop("spec")))
            ratings = [dict(r) for r in con.execute(
                f"SELECT {', '.join(RATING_COLUMNS)} FROM ratings ORDER BY id")]
            plans = [dict(r) for r in con.execute(
                "SELECT * FROM plan ORDER BY test, participant, position")]
    except sqlite3.Error as err:
        raise SpecError(f"{path}: cannot read the results database ({err})") from None
    return Results(tests, ratings, plans)
