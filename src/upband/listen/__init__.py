"""The local listening page and listening tests (``upband listen``; the ``listen`` extra).

Hear and see what enhancement did: the versions of an item side by side with gapless switching,
a looped region, loudness matching and a spectrogram per version with its detected cutoff; and
run the papers' listening tests -- MUSHRA after ITU-R BS.1534-3, AB preference, absolute MOS,
ABX -- with the ratings in SQLite and their analysis. The rooms, one concern each:

* :mod:`~upband.listen.testfile`: the test file (JSON/TOML), checked on load;
* :mod:`~upband.listen.catalog`: items and versions, and the only way a file is reached;
* :mod:`~upband.listen.designs`: the four designs -- trials, per-participant order, answers;
* :mod:`~upband.listen.store`: the SQLite results database;
* :mod:`~upband.listen.app` and :mod:`~upband.listen.server`: the WSGI application and its
  server; ``static/``: the page (plain HTML, CSS and JavaScript modules, no build step);
* :mod:`~upband.listen.loudness` (BS.1770-4) and :mod:`~upband.listen.spectrogram`;
* :mod:`~upband.listen.stimuli`: the test file of an ``upband evaluate`` run, with its stimuli;
* :mod:`~upband.listen.stats`, :mod:`~upband.listen.analysis` and :mod:`~upband.listen.plots`:
  ``upband listen --analyse``.

How to use it and the readings of BS.1534-3 behind it: docs/listening.md.
"""

from __future__ import annotations

from upband.errors import MissingDependencyError

#: Where ``upband listen`` binds unless ``--host`` says otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"


def require_web() -> None:
    """:class:`MissingDependencyError` naming the extra when Werkzeug is not installed."""
    try:
        import werkzeug  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "upband listen: Werkzeug is not installed (pip install 'upband[listen]')") from exc
