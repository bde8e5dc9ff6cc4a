"""The listening page's web application (WSGI, on Werkzeug; why: docs/listening.md).

Routes -- every one of them fixed here; none maps a URL onto a path:

=======================================================  =====================================
``GET /``, ``GET /test/<name>``                          the browsing page, a test's page
``GET /static/<file>``                                   the page's own files (a fixed list)
``GET /api/catalog``                                     items, versions, tests
``GET /api/item/<i>``                                    one item's versions with loudness,
                                                         detected cutoff and metrics
``GET /api/audio/<i>/<v>``                               a version as float WAV
``GET /api/spectrogram/<i>/<v>``                         its spectrogram (:mod:`.spectrogram`)
``POST /api/test/<name>/start``                          a new participant: ``{"token"}``
``GET /api/test/<name>/session/<token>``                 where they stand, and the next trial
``GET /api/test/<name>/audio/<token>/<pos>/<slot>``      a trial's stimulus, by page slot
``POST /api/test/<name>/answer/<token>``                 save a trial's answer
=======================================================  =====================================

Access: bound to a loopback address, a request must name that address (or ``localhost``) and
the port in its ``Host`` header (a page elsewhere cannot reach the server through DNS
rebinding). With a ``key`` (required when serving other hosts), every request must carry it,
as ``?key=`` (the server then sets a cookie) or as that cookie. A POST must be JSON from the
page's own origin. Every response forbids the page to load anything from elsewhere (a
Content-Security-Policy of ``'self'``).
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

import numpy as np
from werkzeug.exceptions import BadRequest, Conflict, Forbidden, HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from upband import audio
from upband.analysis import detect_bandwidth
from upband.common.jsonnum import strict_values
from upband.errors import SpecError, UpbandError
from upband.listen import designs
from upband.listen.catalog import Catalog
from upband.listen.loudness import integrated_loudness
from upband.listen.spectrogram import spectrogram
from upband.listen.store import AlreadySaved, Store

#: Files of ``static/`` the server sends, with their types: nothing else is ever read there.
STATIC = {"index.html": "text/html", "test.html": "text/html", "style.css": "text/css",
          "player.js": "text/javascript", "spectrogram.js": "text/javascript",
          "browse.js": "text/javascript", "test.js": "text/javascript",
          "common.js": "text/javascript"}
KEY_COOKIE = "upband_listen_key"
#: Rates below this are resampled up before they are sent (browsers decode from 8 kHz up).
MIN_PLAY_RATE = 8000
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; media-src 'self' blob:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")

URLS = Map([
    Rule("/", endpoint="index"),
    Rule("/test/<name>", endpoint="test_page"),
    Rule("/static/<name>", endpoint="static"),
    Rule("/api/catalog", endpoint="catalog"),
    Rule("/api/item/<int:item>", endpoint="item"),
    Rule("/api/audio/<int:item>/<int:version>", endpoint="audio"),
    Rule("/api/spectrogram/<int:item>/<int:version>", endpoint="spectrogram"),
    Rule("/api/test/<name>/start", endpoint="start", methods=["POST"]),
    Rule("/api/test/<name>/session/<token>", endpoint="session"),
    Rule("/api/test/<name>/audio/<token>/<int:position>/<slot>", endpoint="test_audio"),
    Rule("/api/test/<name>/answer/<token>", endpoint="answer", methods=["POST"]),
], strict_slashes=False, merge_slashes=False)


def _json(obj: Any, status: int = 200) -> Response:
    body = json.dumps(strict_values(obj), allow_nan=False)
    return Response(body, status=status, mimetype="application/json")


class ListenApp:
    """The WSGI application.

    Args:
        catalog: what may be played.
        store: the results database (a test file's); None when only browsing.
        key: the access key every request must carry (None: none needed).
        hosts: the ``Host`` header values accepted (None: any).
        browse: serve the browsing page and its data (off for a blind test: the browsing page
            names the versions).
        limit_seconds: play and analyse only the first seconds of each file.
    """

    def __init__(self, catalog: Catalog, store: Store | None = None, *, key: str | None = None,
                 hosts: Iterable[str] | None = None, browse: bool = True,
                 limit_seconds: float | None = None) -> None:
        self.catalog = catalog
        self.store = store
        self.key = key
        self.hosts = None if hosts is None else {h.lower() for h in hosts}
        self.browse = browse
        self.limit_seconds = limit_seconds
        self._cache: dict[tuple[str, int, int], Any] = {}
        self._lock = threading.Lock()
        folder = resources.files("upband.listen").joinpath("static")
        self._static = {name: folder.joinpath(name).read_bytes() for name in STATIC}

    # ---------------------------------------------------------------------------------------
    # the WSGI entry and access control
    # ---------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response, set_key = self._dispatch(request)
        except HTTPException as err:
            response, set_key = self._error(request, err), False
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        if set_key and self.key is not None:
            response.set_cookie(KEY_COOKIE, self.key, httponly=True, samesite="Strict")
        return response(environ, start_response)

    def _error(self, request: Request, err: HTTPException) -> Response:
        if request.path.startswith("/api/"):
            return _json({"error": err.description}, err.code or 500)
        return Response(f"{err.code} {err.name}: {err.description}\n", status=err.code,
                        mimetype="text/plain")

    def _dispatch(self, request: Request) -> tuple[Response, bool]:
        host = (request.host or "").lower()
        if self.hosts is not None and host not in self.hosts:
            raise Forbidden(f"unexpected Host {host!r}")
        set_key = False
        if self.key is not None:
            given = request.args.get("key")
            if given is not None and hmac.compare_digest(given.encode(), self.key.encode()):
                set_key = True
            elif not hmac.compare_digest(request.cookies.get(KEY_COOKIE, "").encode(),
                                         self.key.encode()):
                raise Forbidden("this page needs its access key (the ?key= of the URL that "
                                "upband listen printed)")
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin.lower() not in (f"http://{host}",
                                                             f"https://{host}"):
                raise Forbidden("cross-origin request")
            if request.mimetype != "application/json":
                raise BadRequest("expected a JSON body")
        adapter = URLS.bind_to_environ(request.environ)
        endpoint, values = adapter.match()
        handler = getattr(self, f"on_{endpoint}")
        response: Response = handler(request, **values)
        return response, set_key

    # ---------------------------------------------------------------------------------------
    # pages and the catalog
    # ---------------------------------------------------------------------------------------

    def _static_file(self, name: str) -> Response:
        if name not in STATIC:
            raise NotFound()
        return Response(self._static[name], mimetype=STATIC[name])

    def on_index(self, request: Request) -> Response:
        if not self.browse:
            raise NotFound("browsing is off (--no-browse); open a test's page")
        return self._static_file("index.html")

    def on_test_page(self, request: Request, name: str) -> Response:
        self._spec(name)
        return self._static_file("test.html")

    def on_static(self, request: Request, name: str) -> Response:
        return self._static_file(name)

    def _browsing(self) -> None:
        if not self.browse:
            raise NotFound("browsing is off (--no-browse)")

    def on_catalog(self, request: Request) -> Response:
        test = self.catalog.test
        tests = [] if test is None else [
            {"name": t.name, "design": t.design, "trials": len(designs.trials(t))}
            for t in test.tests]
        items = [] if not self.browse else [
            {"index": i, "id": it.id, "title": it.title, "condition": it.condition,
             "versions": [v.name for v in it.versions]}
            for i, it in enumerate(self.catalog.items)]
        return _json({"title": self.catalog.title, "items": items, "tests": tests,
                      "notes": list(test.notes) if test is not None else [],
                      "browse": self.browse})

    def on_item(self, request: Request, item: int) -> Response:
        self._browsing()
        if not 0 <= item < len(self.catalog.items):
            raise NotFound("no such item")
        it = self.catalog.items[item]
        versions = []
        for k, v in enumerate(it.versions):
            loudness, cutoff = self._measure(item, k)
            versions.append({"index": k, "name": v.name, "role": v.role,
                             "loudness_lufs": loudness, "cutoff_hz": cutoff,
                             "metrics": dict(v.metrics)})
        return _json({"index": item, "id": it.id, "title": it.title,
                      "condition": it.condition, "versions": versions})

    # ---------------------------------------------------------------------------------------
    # audio, measurements and spectrograms
    # ---------------------------------------------------------------------------------------

    def _decoded(self, item: int, version: int) -> tuple[np.ndarray, int]:
        try:
            v = self.catalog.version(item, version)
        except KeyError:
            raise NotFound("no such version") from None
        try:
            info = audio.info(v.path)
            frames = -1 if self.limit_seconds is None else \
                max(1, round(self.limit_seconds * info.sample_rate))
            return audio.read(v.path, frames=frames)
        except UpbandError as err:
            raise NotFound(str(err)) from None

    def _cached(self, kind: str, item: int, version: int, make: Callable[[], Any]) -> Any:
        key = (kind, item, version)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = make()
        with self._lock:
            self._cache[key] = value
        return value

    def _measure(self, item: int, version: int) -> tuple[float | None, float | None]:
        v = self.catalog.items[item].versions[version]
        if v.loudness_lufs is not None and v.cutoff_hz is not None:
            return v.loudness_lufs, v.cutoff_hz

        def make() -> tuple[float | None, float | None]:
            try:
                x, sr = self._decoded(item, version)
            except NotFound:
                return None, None
            found = detect_bandwidth(x, sr)
            return (integrated_loudness(x, sr) if v.loudness_lufs is None else v.loudness_lufs,
                    (found.cutoff_hz if v.cutoff_hz is None else v.cutoff_hz))

        result: tuple[float | None, float | None] = self._cached("measure", item, version, make)
        return result

    def _wav(self, item: int, version: int) -> Response:
        x, sr = self._decoded(item, version)
        if sr < MIN_PLAY_RATE:
            x, sr = audio.resample(x, sr, MIN_PLAY_RATE), MIN_PLAY_RATE
        data = audio.encode_bytes(x, sr, format="WAV", subtype="FLOAT")
        return Response(data, mimetype="audio/wav")

    def on_audio(self, request: Request, item: int, version: int) -> Response:
        self._browsing()
        return self._wav(item, version)

    def on_spectrogram(self, request: Request, item: int, version: int) -> Response:
        self._browsing()

        def make() -> dict[str, Any]:
            x, sr = self._decoded(item, version)
            return spectrogram(x, sr)

        return _json(self._cached("spectrogram", item, version, make))

    # ---------------------------------------------------------------------------------------
    # tests
    # ---------------------------------------------------------------------------------------

    def _spec(self, name: str) -> designs.TestSpec:
        test = self.catalog.test
        if test is None or self.store is None:
            raise NotFound("no listening test is served here")
        try:
            return test.test(name)
        except KeyError:
            raise NotFound(f"no test named {name!r}") from None

    def _planned(self, name: str, token: str) -> list[designs.Planned]:
        assert self.store is not None
        planned = self.store.planned(name, token)
        if not planned:
            raise NotFound("unknown participant token")
        return planned

    def on_start(self, request: Request, name: str) -> Response:
        self._spec(name)
        assert self.store is not None
        body = request.get_json(silent=True)
        wanted = body.get("token") if isinstance(body, dict) else None
        if wanted is not None and not isinstance(wanted, str):
            raise BadRequest("token must be a string")
        try:
            token = self.store.start(name, wanted or None)
        except SpecError as err:
            raise BadRequest(str(err)) from None
        return _json({"token": token})

    def on_session(self, request: Request, name: str, token: str) -> Response:
        spec = self._spec(name)
        assert self.store is not None
        planned = self._planned(name, token)
        progress = self.store.progress(name, token)
        out: dict[str, Any] = {"test": name, "design": spec.design, "token": token,
                               "total": progress.total, "done": progress.done,
                               "position": progress.next_position}
        if not progress.done:
            trial = planned[progress.next_position]
            out["trial"] = designs.view(spec, trial, progress.total)
            out["gains_db"] = self._gains(spec, trial)
        return _json(out)

    def _gains(self, spec: designs.TestSpec, trial: designs.Planned) -> dict[str, float]:
        """Per page slot, the gain (dB, ≤ 0) that plays it at the trial's quietest loudness
        (all 0 without ``loudness_match``)."""
        assert self.catalog.test is not None
        item = self.catalog.test.item(trial.trial.item)
        slots = {str(i): name for i, name in enumerate(trial.order)}
        if spec.design == "mushra" and spec.reference is not None:
            slots["ref"] = spec.reference
        if not spec.loudness_match:
            return {s: 0.0 for s in slots}
        loud = {s: item.version(n).loudness_lufs for s, n in slots.items()}
        finite = [v for v in loud.values() if v is not None and np.isfinite(v)]
        floor = min(finite) if finite else 0.0
        return {s: (floor - v if v is not None and np.isfinite(v) else 0.0)
                for s, v in loud.items()}

    def on_test_audio(self, request: Request, name: str, token: str, position: int,
                      slot: str) -> Response:
        spec = self._spec(name)
        planned = self._planned(name, token)
        if not 0 <= position < len(planned):
            raise NotFound("no such trial")
        try:
            version = designs.stimulus_of(spec, planned[position], slot)
        except KeyError:
            raise NotFound("no such slot") from None
        index = next(i for i, it in enumerate(self.catalog.items)
                     if it.id == planned[position].trial.item)
        return self._wav(index, self.catalog.items[index].names().index(version))

    def on_answer(self, request: Request, name: str, token: str) -> Response:
        spec = self._spec(name)
        assert self.store is not None
        planned = self._planned(name, token)
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("answers"), dict):
            raise BadRequest("expected {\"position\": N, \"answers\": {...}}")
        position = body.get("position")
        if not isinstance(position, int) or not 0 <= position < len(planned):
            raise BadRequest("no such trial")
        progress = self.store.progress(name, token)
        if position != progress.next_position:
            raise Conflict(f"trial {position + 1} is not the one to rate (that is "
                           f"{progress.next_position + 1})")
        elapsed = body.get("elapsed_ms")
        elapsed = elapsed if isinstance(elapsed, int) and elapsed >= 0 else None
        try:
            rows = designs.rows_of(spec, planned[position], body["answers"])
            self.store.save(name, token, planned[position], rows, elapsed)
        except AlreadySaved as err:
            raise Conflict(str(err)) from None
        except SpecError as err:
            raise BadRequest(str(err)) from None
        after = self.store.progress(name, token)
        return _json({"saved": len(rows), "position": after.next_position,
                      "done": after.done})
