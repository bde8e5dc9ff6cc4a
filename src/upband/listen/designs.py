"""The four test designs: which trials a test has, the order each participant meets them in,
what the page may show of a trial (nothing that names a stimulus), and the rows an answer
becomes.

* **MUSHRA** (ITU-R BS.1534-3): one trial per item. The open reference is played by its own
  button; every stimulus -- the hidden reference, the anchors and the systems -- gets a slider
  from 0 to 100 under a letter, in an order shuffled per participant and trial.
* **AB** (TD-PR): one trial per item, pair and repeat; the two versions are shown as A and B in a
  shuffled order, the participant picks the one they prefer (forced choice).
* **MOS** (Lattner & Nistal; absolute category rating): one trial per item and version, a
  single stimulus rated 1 (bad) to 5 (excellent); the trials of all items are shuffled together.
* **ABX**: one trial per item, pair and repeat; A and B are the pair in a shuffled order, X is
  one of them drawn at random, and the participant says which one X is.

A participant's plan is drawn once from a generator seeded by the participant's token and the
test's name, and stored (:mod:`upband.listen.store`), so a reload finds the same order.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from upband.errors import SpecError
from upband.listen.testfile import BadTestFile, ListeningTest, TestSpec

#: The labels of BS.1534-3's continuous quality scale, from its top (100) down, and of MOS.
MUSHRA_SCALE = ("Excellent", "Good", "Fair", "Poor", "Bad")
MOS_SCALE = {5: "Excellent", 4: "Good", 3: "Fair", 2: "Poor", 1: "Bad"}


@dataclass(frozen=True)
class Trial:
    """A trial of a test: an ``id`` stable across participants, its item and the versions it
    presents (MUSHRA: every stimulus, the hidden reference included; AB/ABX: the pair; MOS:
    one version)."""

    id: str
    item: str
    stimuli: tuple[str, ...]


@dataclass(frozen=True)
class Planned:
    """A trial as one participant meets it: its 0-based ``position`` in their session and the
    stimuli in the order of the page's slots (ABX: A, B, then X)."""

    position: int
    trial: Trial
    order: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    """One rating: the version rated, the slot it had on the page, the value and the answer
    (AB: the preferred version; ABX: the version chosen as X)."""

    stimulus: str
    slot: int
    value: float
    answer: str = ""


def trials(spec: TestSpec) -> list[Trial]:
    """Every trial of ``spec`` in file order."""
    out: list[Trial] = []
    for item in spec.items:
        if spec.design == "mushra":
            out.append(Trial(item, item, spec.versions))
        elif spec.design == "mos":
            out += [Trial(f"{item}:{v}", item, (v,)) for v in spec.versions]
        else:
            out += [Trial(f"{item}:{a}|{b}:{r + 1}", item, (a, b))
                    for a, b in spec.pairs for r in range(spec.repeats)]
    return out


def seed_for(token: str, test: str) -> int:
    """The 64-bit seed of a participant's plan (stable across processes and machines)."""
    return int.from_bytes(hashlib.sha256(f"{test}|{token}".encode()).digest()[:8], "little")


def plan(spec: TestSpec, token: str) -> list[Planned]:
    """The participant's session: trials shuffled, and the stimuli of each trial shuffled."""
    rng = np.random.default_rng(seed_for(token, spec.name))
    all_trials = trials(spec)
    out = []
    for position, k in enumerate(rng.permutation(len(all_trials))):
        trial = all_trials[int(k)]
        order = tuple(trial.stimuli[int(i)] for i in rng.permutation(len(trial.stimuli)))
        if spec.design == "abx":
            order = (*order, order[int(rng.integers(2))])
        out.append(Planned(position, trial, order))
    return out


def slot_letters(n: int) -> list[str]:
    """``A``, ``B``, ... for ``n`` slots."""
    return [chr(ord("A") + i) for i in range(n)]


def view(spec: TestSpec, planned: Planned, total: int) -> dict[str, Any]:
    """What the page gets of a trial: labels and scales, never a version's name."""
    base: dict[str, Any] = {"design": spec.design, "position": planned.position,
                            "total": total, "require_played": spec.require_played,
                            "instructions": spec.instructions}
    n = len(planned.order)
    if spec.design == "mushra":
        return {**base, "slots": slot_letters(n), "reference": True,
                "scale": list(MUSHRA_SCALE),
                "question": "Rate the basic audio quality of each stimulus against the "
                            "reference (0-100)."}
    if spec.design == "ab":
        return {**base, "slots": ["A", "B"], "reference": False,
                "question": "Which one do you prefer?"}
    if spec.design == "mos":
        return {**base, "slots": ["A"], "reference": False,
                "scale": [{"value": k, "label": v} for k, v in MOS_SCALE.items()],
                "question": "How good is the audio quality?"}
    return {**base, "slots": ["A", "B", "X"], "reference": False,
            "question": "Is X the same as A or as B?"}


def stimulus_of(spec: TestSpec, planned: Planned, slot: str) -> str:
    """The version behind a page slot: its 0-based index, or ``ref`` (MUSHRA's open
    reference). ``KeyError`` for any other slot."""
    if slot == "ref" and spec.design == "mushra" and spec.reference is not None:
        return spec.reference
    if slot.isdigit() and int(slot) < len(planned.order):
        return planned.order[int(slot)]
    raise KeyError(slot)


def _number(answers: dict[str, Any], key: str) -> float:
    value = answers.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise SpecError(f"answer '{key}' must be a number")
    return float(value)


def rows_of(spec: TestSpec, planned: Planned, answers: dict[str, Any]) -> list[Row]:
    """Check an answer from the page and turn it into rows; :class:`SpecError` if it does not
    fit the trial (wrong count, out of range)."""
    order = planned.order
    if spec.design == "mushra":
        ratings = answers.get("ratings")
        if not isinstance(ratings, list) or len(ratings) != len(order):
            raise SpecError(f"a MUSHRA answer needs {len(order)} ratings")
        values = [_number({"r": r}, "r") for r in ratings]
        if any(not 0 <= v <= 100 for v in values):
            raise SpecError("MUSHRA ratings must lie from 0 to 100")
        return [Row(name, i, v) for i, (name, v) in enumerate(zip(order, values, strict=True))]
    if spec.design == "mos":
        value = _number(answers, "rating")
        if value not in MOS_SCALE:
            raise SpecError("a MOS rating must be 1, 2, 3, 4 or 5")
        return [Row(order[0], 0, value)]
    choice = _number(answers, "choice")
    if choice not in (0, 1):
        raise SpecError("the choice must be 0 (A) or 1 (B)")
    chosen = order[int(choice)]
    if spec.design == "ab":
        return [Row(name, i, 1.0 if i == int(choice) else 0.0, chosen)
                for i, name in enumerate(order)]
    return [Row(order[2], 2, 1.0 if chosen == order[2] else 0.0, chosen)]


def check_test(test: ListeningTest, spec: TestSpec) -> None:
    """:class:`BadTestFile` when a test cannot be run: MUSHRA with a single stimulus, or an empty
    session."""
    if not trials(spec):
        raise BadTestFile(f"{test.path}: test {spec.name}: has no trials")
    if spec.design == "mushra" and len(spec.versions) < 2:
        raise BadTestFile(f"{test.path}: test {spec.name}: MUSHRA needs the hidden reference "
                        "and at least one other stimulus")
