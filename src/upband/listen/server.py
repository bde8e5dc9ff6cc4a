"""Start the listening page: choose what to serve, bind, print the addresses, open a browser.

:func:`make_app` turns the command line's inputs (one test file, or audio files and folders)
into a :class:`~upband.listen.app.ListenApp`; :func:`start` binds it with Werkzeug's threaded
server on a free port (or the one asked for) and returns a :class:`Running` server, which the
command serves until Ctrl-C and the tests stop with :meth:`Running.stop`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import socketserver
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from werkzeug.serving import BaseWSGIServer, make_server

from upband.errors import SpecError
from upband.listen import DEFAULT_HOST, designs
from upband.listen.app import ListenApp
from upband.listen.catalog import Catalog, from_paths, from_test
from upband.listen.store import Store
from upband.listen.testfile import ListeningTest, is_test_path, load_test

#: The results database's name beside a test file (``--db`` overrides).
DB_SUFFIX = ".results.sqlite"


def default_db(test_path: Path) -> Path:
    """Where a test's ratings go unless told: ``<test>.results.sqlite`` beside the file."""
    return test_path.with_name(test_path.stem + DB_SUFFIX)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Served:
    """What :func:`make_app` made: the application and the test it serves, if any."""

    app: ListenApp
    catalog: Catalog
    test: ListeningTest | None = None
    db: Path | None = None
    notes: list[str] = field(default_factory=list)


def make_app(inputs: Sequence[str | os.PathLike[str]], *, db: str | Path | None = None,
             key: str | None = None, browse: bool = True, limit_seconds: float | None = None,
             hosts: Sequence[str] | None = None) -> Served:
    """The application for one test file or for audio files and folders.

    ``SpecError`` (one line) for a bad test file, a mix of a test file and audio, or nothing
    to play.
    """
    if not inputs:
        raise SpecError("no inputs: give audio files or folders, or one listening-test file")
    tests = [Path(p) for p in inputs if is_test_path(Path(p))]
    if tests and len(inputs) > 1:
        raise SpecError("give one listening-test file alone (its versions are in it), or "
                        "audio files and folders")
    if tests:
        test = load_test(tests[0])
        for spec in test.tests:
            designs.check_test(test, spec)
        catalog = from_test(test)
        db_path = Path(db) if db is not None else default_db(tests[0])
        store = Store(db_path, test) if test.tests else None
        app = ListenApp(catalog, store, key=key, hosts=hosts, browse=browse,
                        limit_seconds=limit_seconds)
        return Served(app, catalog, test, db_path if store else None)
    if db is not None:
        raise SpecError("--db is for a listening-test file; plain audio has no test")
    catalog = from_paths(inputs)
    app = ListenApp(catalog, None, key=key, hosts=hosts, browse=True,
                    limit_seconds=limit_seconds)
    return Served(app, catalog, None, None, list(catalog.refused))


@dataclass
class Running:
    """A started server: its address, the URLs to print, and how to stop it."""

    server: BaseWSGIServer
    host: str
    port: int
    key: str | None
    thread: threading.Thread | None = None

    def url(self, path: str = "/") -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        query = f"?key={quote(self.key)}" if self.key else ""
        return f"http://{host}:{self.port}{path}{query}"

    def serve_forever(self) -> None:
        """Serve until :meth:`stop` or an interrupt, which propagates (Werkzeug's own
        ``serve_forever`` would swallow Ctrl-C, and the exit status with it)."""
        socketserver.BaseServer.serve_forever(self.server, poll_interval=0.2)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)


def access(host: str, token: str | None) -> str | None:
    """The access key: ``token`` if given; a new random one for a host other than loopback
    (which must never be served without one); else none."""
    if token is not None:
        if len(token) < 8:
            raise SpecError("--token must be at least 8 characters")
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(16)


def _bind(host: str, port: int) -> tuple[socket.socket, str]:
    """A listening socket on ``host:port``, bound here so that a taken port or an unknown
    host is a one-line error (Werkzeug would print and exit). Returns the socket and the
    numeric address it is bound to."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as err:
        raise SpecError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as err:
        sock.close()
        raise SpecError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    return sock, str(address[0])


def start(served: Served, *, host: str = DEFAULT_HOST, port: int = 0,
          background: bool = False, quiet: bool = True) -> Running:
    """Bind ``served.app`` to ``host:port`` (0: a free port) and, with ``background``, serve
    from a daemon thread. ``SpecError`` when the address cannot be bound."""
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sock, numeric = _bind(host, port)
    try:
        server = make_server(numeric, port, served.app, threaded=True, fd=sock.fileno())
    finally:
        sock.close()  # the server holds its own duplicate of the descriptor
    real_port = int(server.port)
    if is_loopback(host):
        served.app.hosts = {f"{name}:{real_port}" for name in
                            ("127.0.0.1", "localhost", "[::1]", host.lower())}
    running = Running(server, host, real_port, served.app.key)
    if background:
        running.thread = threading.Thread(target=running.serve_forever, daemon=True,
                                          name="upband-listen")
        running.thread.start()
    return running
