"""The house rules that keep the repository readable (docs/architecture.md): every path a file
cites exists, nothing cites a file outside the repository, rooms stay small, and the layers
import only downwards."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "upband"

#: Longest allowed source file and function (lines), as issue 12 set them.
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80

#: A repository path cited in text: a top-level folder of the repository, then a path.
_CITED = re.compile(r"(?<![\w./-])((?:src/upband|docs|configs|tests|scripts|benchmarks|\.ci)"
                    r"/[\w.\-/*{}<>]*[\w/*}>])")
#: Cited paths that stand for a pattern or a user's folder, not a file of the repository.
_PLACEHOLDER = re.compile(r"[*{}<>]|/X\b|/NAME\b|/N\b")


def _tracked(*suffixes: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in out if f.endswith(suffixes) and (ROOT / f).is_file()]


def _cited_paths(text: str) -> set[str]:
    return {m.group(1).rstrip(".") for m in _CITED.finditer(text)}


def test_every_cited_path_exists() -> None:
    missing = []
    for path in _tracked(".md", ".py", ".toml", ".txt", ".cfg", ""):
        if (path.suffix == "" and path.name != "run") or path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for cited in _cited_paths(text):
            if _PLACEHOLDER.search(cited):
                continue
            if not (ROOT / cited).exists():
                missing.append(f"{path.relative_to(ROOT)} cites {cited}")
    assert not missing, "\n".join(sorted(missing))


def test_cited_path_pattern() -> None:
    text = "see docs/readings/metrics.md, and src/upband/audio/ (or tests/test_x.py, " \
           "configs/sulun-*.toml)."
    found = _cited_paths(text)
    assert found == {"docs/readings/metrics.md", "src/upband/audio/", "tests/test_x.py",
                     "configs/sulun-*.toml"}
    assert [p for p in found if _PLACEHOLDER.search(p)] == ["configs/sulun-*.toml"]


def test_nothing_cites_files_outside_the_repository() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _tracked(".md", ".py", ".toml")
                 if p != Path(__file__).resolve()
                 and re.search(r"REFERENCE\.md|\.\./shared", p.read_text(encoding="utf-8"))]
    assert offenders == []


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
            f"({node.end_lineno - node.lineno + 1} lines)"  # type: ignore[operator]
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]  # type: ignore[operator]


def test_rooms_stay_small() -> None:
    big = [f"{p.relative_to(ROOT)} ({n} lines)" for p in sorted(SRC.rglob("*.py"))
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES]
    long = [f for p in sorted(SRC.rglob("*.py")) for f in _long_functions(p)]
    assert big == [] and long == []


def _imports(path: Path) -> set[str]:
    """The upband modules ``path`` imports (absolute imports; upband uses no relative ones)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("upband"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("upband"))
    return found


#: The rooms: the package's top-level modules and subpackages.
ROOMS = {p.stem for p in SRC.glob("*.py")} | {p.name for p in SRC.iterdir()
                                              if (p / "__init__.py").exists()}


def _room(module: str) -> str:
    """``upband.audio.reading`` -> ``audio``; a name defined in ``upband/__init__`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else ""


#: Which rooms each room may import besides ``common`` and ``errors``, which every room may
#: (docs/architecture.md draws the same picture).
ALLOWED: dict[str, set[str]] = {
    "common": {"errors"},
    "fsutil": set(),
    "plotting": {"errors", "fsutil"},
    "audio": {"errors", "fsutil", "common"},
    "degrade": {"audio", "errors", "common"},
    "analysis": {"audio", "degrade", "errors", "common"},
    "metrics": {"audio", "errors", "common", "models"},
    "models": {"errors", "common"},
    "states": {"models", "errors", "common", "fsutil"},
    "enhancement": {"audio", "analysis", "degrade", "models", "states", "errors", "common",
                    "fsutil"},
    "data": {"audio", "analysis", "degrade", "errors", "common", "fsutil"},
    "train": {"audio", "analysis", "degrade", "models", "states", "metrics", "data", "errors",
              "common", "fsutil", "plotting", "enhancement"},
    "evaluate": {"audio", "analysis", "degrade", "models", "states", "metrics", "data",
                 "enhancement", "errors", "common", "fsutil", "plotting"},
    "listen": {"audio", "analysis", "degrade", "evaluate", "errors", "common", "fsutil",
               "plotting"},
    "cli": {"audio", "analysis", "degrade", "models", "states", "metrics", "data", "enhancement",
            "train", "evaluate", "listen", "errors", "common", "fsutil", "plotting"},
}


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_only_downwards(room: str) -> None:
    files = sorted((SRC / room).rglob("*.py")) if (SRC / room).is_dir() \
        else [SRC / f"{room}.py"]
    assert files and all(f.exists() for f in files)
    wrong = sorted({f"{f.relative_to(ROOT)} imports {m}" for f in files for m in _imports(f)
                    if _room(m) not in ALLOWED[room] | {room, "", "common", "errors"}})
    assert wrong == []
