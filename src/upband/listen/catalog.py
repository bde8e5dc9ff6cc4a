"""What the page may play: the items and their versions, and the one way a file is reached.

A :class:`Catalog` is built once, at start-up, from a listening-test file or from the audio files
and folders given on the command line. The page names a version by two numbers (item, version),
never by a path: there is no URL that maps onto the file system. Every path is also checked
again when it is served, by its real path (symbolic links resolved): it must be one of the
files given, or lie inside one of the folders given (for a test file: inside the test file's
folder). A link that leads elsewhere is refused when the catalog is built, and so is one that
is changed to lead elsewhere later.

Grouping plain files into items: files are keyed by their folder relative to the argument they
were found under, so ``orig/x/song.mp3`` and ``restored/x/song.upband.flac`` (``upband enhance
orig/ -r -o restored/``) meet; in that key, a file whose stem is another's stem plus ``.``,
``_``, ``-`` or a space and more (``song_cheby1``, ``song.upband``) is a version of it, and
files with the same stem are versions of one item.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from upband.audio import is_audio_path
from upband.errors import AudioFileNotFoundError, SpecError
from upband.listen.testfile import Item, ListeningTest, Version

#: What separates a base stem from a version's suffix (``song_cheby1``, ``song.upband``).
SEPARATORS = "._- "


@dataclass
class Catalog:
    """Items with their versions, and the real paths the server may read.

    ``roots`` are folders (anything inside may be served) and ``files`` single files (only
    they); both hold real paths.
    """

    title: str
    items: list[Item]
    roots: tuple[Path, ...] = ()
    files: frozenset[Path] = frozenset()
    test: ListeningTest | None = None
    refused: list[str] = field(default_factory=list)

    def allowed(self, path: Path) -> bool:
        """Whether ``path`` (resolved here, links followed) is one the server may read."""
        real = Path(os.path.realpath(path))
        return real in self.files or any(real.is_relative_to(r) for r in self.roots)

    def version(self, item: int, version: int) -> Version:
        """The version by index; ``KeyError`` when out of range or no longer allowed."""
        if not (0 <= item < len(self.items)):
            raise KeyError(item)
        versions = self.items[item].versions
        if not (0 <= version < len(versions)):
            raise KeyError(version)
        v = versions[version]
        if not self.allowed(v.path):
            raise KeyError(version)
        return v


def from_test(test: ListeningTest) -> Catalog:
    """The catalog of a test file: its items; its folder is the only root."""
    return Catalog(test.title, list(test.items), (test.path.parent.resolve(),), test=test)


def _found(arg: Path) -> tuple[Path, list[Path]]:
    """The real root of one argument and the audio files it holds (sorted)."""
    if not arg.exists():
        raise AudioFileNotFoundError(f"{arg}: no such file or folder")
    root = arg.resolve()
    if root.is_file():
        if not is_audio_path(root):
            raise SpecError(f"{arg}: not an audio file upband reads (nor a test file: "
                            ".json / .toml)")
        return root, [arg]
    return root, sorted(p for p in arg.rglob("*") if p.is_file() and is_audio_path(p))


def from_paths(paths: Sequence[str | os.PathLike[str]], title: str = "upband listen"
               ) -> Catalog:
    """The catalog of audio files and folders (searched recursively), grouped into items
    (module doc). ``SpecError`` when nothing playable is found."""
    roots: list[Path] = []
    files: set[Path] = set()
    groups: dict[tuple[str, str], list[tuple[str, Path]]] = {}
    refused: list[str] = []
    entries: list[tuple[str, str, Path, Path]] = []  # (key dir, stem, shown path, real)
    for raw in paths:
        arg = Path(raw)
        root, found = _found(arg)
        if root.is_file():
            files.add(root)
            entries.append(("", arg.stem, arg, root))
            continue
        roots.append(root)
        for p in found:
            real = p.resolve()
            if not real.is_relative_to(root):
                refused.append(f"{p}: a link to {real}, outside {arg}; not served")
                continue
            folder = p.parent.relative_to(arg).as_posix()
            entries.append(("" if folder == "." else folder, p.stem, p, real))
    bases: dict[str, list[str]] = {}
    for key, stem, shown, real in sorted(entries, key=lambda e: (e[0], len(e[1]), e[1])):
        base = next((b for b in bases.get(key, []) if stem == b or
                     (stem.startswith(b) and stem[len(b)] in SEPARATORS)), None)
        if base is None:
            base = stem
            bases.setdefault(key, []).append(stem)
        groups.setdefault((key, base), []).append((shown.name, real))
    if not groups:
        raise SpecError("no audio files found in " + ", ".join(str(p) for p in paths))
    items: list[Item] = []
    for (key, base), members in sorted(groups.items()):
        names = [n for n, _ in members]
        versions = []
        for n, (name, real) in enumerate(members):
            label = name if names.count(name) == 1 else f"{real.parent.name}/{name}"
            versions.append(Version(label, "reference" if n == 0 else "system", real))
        items.append(Item(f"item{len(items)}", f"{key}/{base}" if key else base, "",
                          tuple(versions)))
    return Catalog(title, items, tuple(roots), frozenset(files), None, refused)
