"""Errors a user can cause. Each one carries a message fit to print as a single line.

The CLI prints ``upband: error: <message>`` on one line and exits 1 when an input file could
not be processed, 2 for an error of the command line (the rule is in ``upband.cli``); anything
else is an internal error, also one line (``UPBAND_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations


class UpbandError(Exception):
    """Base class of every error caused by bad input, a bad option or a missing extra."""


class AudioFileNotFoundError(UpbandError, FileNotFoundError):
    """The path does not exist."""


class NotAFileError(UpbandError, IsADirectoryError):
    """The path is a directory (or another non-regular file) where an audio file was expected."""


class EmptyAudioError(UpbandError):
    """The file is zero bytes long, or decodes to zero samples."""


class DecodeError(UpbandError):
    """The file claims a supported format but cannot be decoded: corrupt or truncated."""


class UnsupportedFormatError(UpbandError):
    """The container, codec, sample rate or output subtype is not one upband handles."""


class NonFiniteAudioError(UpbandError):
    """The audio holds NaN or infinite samples."""


class SpecError(UpbandError, ValueError):
    """A degradation spec, preset name or parameter is malformed or out of range."""


class OutputExistsError(UpbandError, FileExistsError):
    """The output exists and overwriting was not asked for."""


class CorpusError(UpbandError):
    """A training corpus folder is missing, incomplete, corrupt or of another format version."""


class ModelError(UpbandError):
    """A model name, checkpoint or weights file is unknown, malformed or fails its checksum."""


class EvaluationError(UpbandError):
    """An evaluation produced no result: every file of it failed."""


class MissingDependencyError(UpbandError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
