"""Where every output of a batch goes, decided before any work: :func:`plan_outputs`.

The rules keep a batch from losing, doubling or misplacing a file:

* **Inside ``-o`` only.** ``--filename`` makes a file *name* from ``{stem}`` and ``{ext}``; a
  template with any other field, a path separator, ``..`` or an absolute path is refused
  (:func:`check_template`), so nothing is written outside the output folder.
* **One output per input.** Two inputs that would get the same output (``song.mp3`` and
  ``song.flac`` in one folder, ``a/x.wav`` and ``b/x.wav`` into one ``-o``) are told apart by
  their own extension (``song.mp3.upband.flac``, ``song.flac.upband.flac``); where even that
  collides (the same name in two folders given one by one, or as two folder inputs) the batch
  is refused before it starts, with the two inputs named.
* **Never upband's own outputs.** A folder search leaves out files named like an output of the
  template (``*.upband.wav`` / ``*.upband.flac`` by default) and everything inside the output
  folder when it lies within an input folder, so a rerun does not enhance its own results.
* **Nothing silently ignored.** Files with the extension of a format upband cannot read (M4A,
  AAC, WMA, ...) found in a folder are planned like the rest and fail with the format's
  one-line message, counted in the batch summary.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from upband import audio
from upband.enhancement.settings import OUTPUT_TEMPLATE
from upband.errors import SpecError
from upband.fsutil import refuse_input_as_output

#: Audio extensions upband does not read: found in a folder, they are reported, not skipped.
FOREIGN_EXTENSIONS = frozenset({".m4a", ".m4b", ".mp4", ".aac", ".alac", ".wma", ".webm",
                                ".mka", ".ape", ".wv", ".ac3", ".dts", ".amr"})
_FIELDS = ("stem", "ext")
_OUTPUT_EXTS = tuple(e.lstrip(".") for e in audio.WRITE_FORMATS)


def check_template(template: str) -> None:
    """Refuse (:class:`SpecError`) an output name template that is not a plain file name made
    from ``{stem}`` (required) and ``{ext}``."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise SpecError(f"--filename {template!r}: {err}") from None
    unknown = sorted({f for f in fields if f not in _FIELDS})
    if unknown:
        raise SpecError(f"--filename {template!r}: unknown field {{{unknown[0]}}}; the fields "
                        "are {stem} and {ext}")
    if "stem" not in fields:
        raise SpecError("--filename must contain {stem} (or every output would be the same)")
    name = template.format(stem="x", ext="flac")
    if "/" in name or "\\" in name or name in (".", "..") or Path(name).is_absolute():
        raise SpecError(f"--filename {template!r} must give a file name, not a path: outputs "
                        "stay inside the output folder (-o)")


def output_pattern(template: str) -> re.Pattern[str]:
    """A regular expression matching every name ``template`` can produce (upband's outputs)."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field == "stem":
            parts.append(".+")
        elif field == "ext":
            parts.append("(?:" + "|".join(_OUTPUT_EXTS) + ")")
    return re.compile("".join(parts), re.IGNORECASE)


def _search(folder: Path, recursive: bool, own: re.Pattern[str], output: Path | None
            ) -> list[Path]:
    """Audio files (readable or of a known foreign format) under ``folder``, without
    upband's outputs and the output folder's contents."""
    out = output.resolve() if output is not None else None
    inside = out is not None and out != folder.resolve()  # -o lies within this folder's tree
    found = []
    for p in folder.glob("**/*" if recursive else "*"):
        suffix = p.suffix.lower()
        if not (suffix in audio.READ_EXTENSIONS or suffix in FOREIGN_EXTENSIONS):
            continue
        if own.fullmatch(p.name) or not p.is_file():
            continue
        if inside and out in p.resolve().parents:
            continue
        found.append(p)
    return sorted(found)


def plan_outputs(inputs: list[Path], output: Path | None, *, recursive: bool,
                 template: str = OUTPUT_TEMPLATE, fmt: str | None = None
                 ) -> list[tuple[Path, Path]]:
    """Pair every input file with its output path (the rules are the module's).

    One file and ``output`` ending in .wav/.flac: that file. Otherwise ``output`` (default: next
    to each input) is a folder; folders given as inputs are searched (recursively with
    ``recursive``) and their tree is mirrored. ``template`` fields: ``{stem}``, ``{ext}``;
    ``fmt`` (``wav`` or ``flac``) is the extension, default wav for wav inputs, else flac.
    Raises :class:`SpecError` for a bad template, an output file of a format upband does not
    write, an output file for several inputs, a folder holding no audio and two inputs that
    cannot get distinct outputs.
    """
    check_template(template)
    if output is not None and len(inputs) > 1 and output.suffix.lower() in audio.WRITE_FORMATS \
            and not output.is_dir():
        raise SpecError(f"{len(inputs)} inputs need an output folder, not the file {output}")
    if output is not None and output.suffix.lower() not in audio.WRITE_FORMATS and (
            output.suffix.lower() in audio.READ_EXTENSIONS | FOREIGN_EXTENSIONS):
        raise SpecError(f"{output}: upband writes .wav or .flac files, not "
                        f"{output.suffix.lower()} (give a .wav/.flac name or a folder)")
    # a template with no text of its own ("{stem}.{ext}") names outputs like inputs
    own = output_pattern(template) if template.replace("{stem}", "").replace("{ext}", "") \
        .strip(".") else re.compile(r"(?!)")
    files: list[tuple[Path, Path]] = []  # (input, path relative to its output root)
    for item in inputs:
        if item.is_dir():
            found = _search(item, recursive, own, output)
            if not found:
                raise SpecError(f"{item}: no audio files found"
                                + ("" if recursive else " (use --recursive for subfolders)"))
            files += [(p, p.relative_to(item).parent) for p in found]
        else:
            files.append((item, Path()))
    single = len(inputs) == 1 and not inputs[0].is_dir() and output is not None and \
        output.suffix.lower() in audio.WRITE_FORMATS
    if single:
        assert output is not None
        refuse_input_as_output(files[0][0], output)  # the command line asked for it: exit 2
        return [(files[0][0], output)]
    return _distinct(files, output, template, fmt)


def _destination(src: Path, rel: Path, output: Path | None, template: str, fmt: str | None,
                 stem: str) -> Path:
    name = template.format(stem=stem, ext=fmt or _default_ext(src))
    return (output / rel / name) if output is not None else src.parent / name


def _key(path: Path) -> str:
    """What makes two output paths the same file (case-insensitive file systems included)."""
    return str(path.resolve()).casefold()


def _distinct(files: list[tuple[Path, Path]], output: Path | None, template: str,
              fmt: str | None) -> list[tuple[Path, Path]]:
    """``(input, output)`` for every ``(input, relative folder)`` of ``files``: named by the
    input's stem, or by its whole name where stems collide; refuse what still collides."""
    pairs = [(src, _destination(src, rel, output, template, fmt, src.stem))
             for src, rel in files]
    groups: dict[str, list[int]] = {}
    for i, (_, dst) in enumerate(pairs):
        groups.setdefault(_key(dst), []).append(i)
    out = list(pairs)
    for members in groups.values():
        if len(members) > 1:
            for i in members:
                src, rel = files[i]
                out[i] = (src, _destination(src, rel, output, template, fmt, src.name))
    seen: dict[str, Path] = {}
    for src, dst in out:
        other = seen.setdefault(_key(dst), src)
        if other != src:
            raise SpecError(f"{other} and {src} would both be written to {dst}: enhance them "
                            "into separate folders (-o), or their common folder with "
                            "--recursive (its tree is mirrored)")
    return out


def _default_ext(src: Path) -> str:
    suffix = src.suffix.lower()
    return "wav" if suffix in (".wav", ".wave") else "flac"


def draw_outputs(pairs: list[tuple[Path, Path]], template: str, seed: int, draws: int
                 ) -> tuple[list[tuple[Path, Path]], list[int]]:
    """``draws`` variations of every planned output, for a stochastic model
    (``upband enhance --draws``): seeds ``seed .. seed + draws - 1``, named by the template with
    ``.seed<N>`` after the stem (``song.seed3.upband.flac``, so a folder search still leaves
    them out), or after the name of one chosen output file (``out.seed3.flac``). One draw
    keeps the names. Returns the pairs and the seed of each."""
    if draws < 1:
        raise SpecError(f"--draws must be a positive integer, got {draws}")
    if draws == 1:
        return list(pairs), [seed] * len(pairs)
    out, seeds = [], []
    for src, dst in pairs:
        ext = dst.suffix.lstrip(".")
        stem = next((s for s in (src.stem, src.name)
                     if template.format(stem=s, ext=ext) == dst.name), None)
        for n in range(seed, seed + draws):
            name = (template.format(stem=f"{stem}.seed{n}", ext=ext) if stem is not None
                    else f"{dst.stem}.seed{n}{dst.suffix}")
            out.append((src, dst.with_name(name)))
            seeds.append(n)
    return out, seeds
