"""``upband listen``: the local listening page and listening tests (:mod:`upband.listen`), and
``upband listen --analyse DB``, their analysis."""

from __future__ import annotations

import argparse
import sys
import webbrowser
from pathlib import Path

from upband.cli.base import EXIT_OK, input_files
from upband.errors import SpecError
from upband.listen import DEFAULT_HOST, require_web

DESCRIPTION = (
    "Serve a local page (127.0.0.1, a free port) that plays the versions of each item side by "
    "side -- gapless switching, a looped region, loudness matching, a spectrogram per version "
    "with the detected cutoff, the report's metrics -- and runs the listening tests of a test "
    "file (upband evaluate --listening-test): MUSHRA (ITU-R BS.1534-3), AB, MOS and ABX, with "
    "the ratings in SQLite. Audio files are grouped into items by name (song.wav, "
    "song_cheby1.flac, song.upband.flac). With --analyse DB: means with 95 % intervals, "
    "paired t-tests and Wilcoxon tests, BS.1534-3 post-screening, CSV files and figures.")


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband listen``."""
    p.description = DESCRIPTION
    p.add_argument("inputs", nargs="*", type=Path, metavar="FILES_OR_DIR",
                   help="audio files and folders (searched recursively), or one listening-test "
                   "file (.json / .toml)")
    p.add_argument("--port", type=int, default=0, metavar="N",
                   help="port to listen on (default: a free one)")
    p.add_argument("--host", default=DEFAULT_HOST, metavar="ADDRESS",
                   help=f"address to bind (default {DEFAULT_HOST}); any address that is not "
                   "this machine's loopback needs the access key in every request")
    p.add_argument("--token", metavar="KEY",
                   help="the access key (at least 8 characters); default: none on loopback, a "
                   "random one with --host")
    p.add_argument("--no-browser", action="store_true",
                   help="print the address, do not open a browser")
    p.add_argument("--no-browse", action="store_true",
                   help="serve only the tests' pages (the browsing page names the versions: "
                   "keep it from the participants of a blind test)")
    p.add_argument("--db", type=Path, metavar="DB",
                   help="results database of a test file (default: <test>.results.sqlite "
                   "beside it)")
    p.add_argument("--limit-seconds", type=float, metavar="S",
                   help="play and analyse only the first S seconds of each file")
    p.add_argument("--analyse", "--analyze", type=Path, metavar="DB",
                   help="analyse a results database instead of serving")
    p.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="with --analyse: folder of the CSV files and figures (default: "
                   "<DB stem>-analysis beside the database)")
    p.add_argument("--no-screening", action="store_true",
                   help="with --analyse: keep the MUSHRA assessors BS.1534-3's post-screening "
                   "would exclude")
    p.add_argument("--no-plots", action="store_true", help="with --analyse: no figures")
    p.add_argument("-f", "--force", action="store_true",
                   help="with --analyse: replace an existing analysis")
    p.set_defaults(func=run)


def analyse(args: argparse.Namespace) -> int:
    """Print the analysis of ``--analyse DB`` and write its files."""
    from upband.listen.analysis import analyse as analyse_db

    if args.inputs:
        raise SpecError("--analyse takes a results database, not FILES_OR_DIR")
    result = analyse_db(args.analyse, args.output, screening=not args.no_screening,
                        plots=not args.no_plots, force=args.force)
    print(result.text)
    for note in result.notes:
        print(f"upband: note: {note}", file=sys.stderr)
    print(f"\nupband: written {', '.join(str(p) for p in result.written)}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C), or analyse with ``--analyse``."""
    if args.analyse is not None:
        return analyse(args)
    require_web()
    from upband.listen import designs
    from upband.listen.server import access, make_app, start

    if args.limit_seconds is not None and not args.limit_seconds > 0:
        raise SpecError(f"--limit-seconds must be positive, got {args.limit_seconds:g}")
    if not 0 <= args.port <= 65535:
        raise SpecError(f"--port must be from 0 to 65535, got {args.port}")
    key = access(args.host, args.token)
    with input_files():
        served = make_app(args.inputs, db=args.db, key=key, browse=not args.no_browse,
                          limit_seconds=args.limit_seconds)
    for note in served.notes:
        print(f"upband: note: {note}", file=sys.stderr)
    running = start(served, host=args.host, port=args.port)
    try:
        first = running.url("/") if not args.no_browse else None
        if first is not None:
            print(f"upband: listening page at {first}")
        if served.test is not None:
            for spec in served.test.tests:
                print(f"upband: test {spec.name} ({spec.design.upper()}, "
                      f"{len(designs.trials(spec))} trials): {running.url(f'/test/{spec.name}')}")
            if served.db is not None:
                print(f"upband: ratings go to {served.db}")
        print("upband: Ctrl-C stops the server", flush=True)
        target = first or (running.url(f"/test/{served.test.tests[0].name}")
                           if served.test is not None and served.test.tests else None)
        if not args.no_browser and target is not None:
            webbrowser.open(target)
        running.serve_forever()
    finally:
        running.server.server_close()
    return EXIT_OK
