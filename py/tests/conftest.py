"""Shared fixtures: an injectable clock, real HTTP servers on loopback (bounded, shut down) and
Redis (``REDIS_TEST_URL`` or a private ``redis-server``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


class FakeClock:
    """A clock for limiters: ``clock()`` returns seconds; tests move it with ``advance``.

    Thread-safe, so a server thread and the test can share it. Also usable as a fake
    ``sleep``: ``clock.sleep(s)`` records the wait and advances the clock instead of waiting.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._t = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextlib.contextmanager
def werkzeug_server(app: Any) -> Iterator[str]:
    """Serves a WSGI app on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        # werkzeug's serve_forever closes the server itself once shutdown() stops it, so the
        # serving thread is joined before this thread closes anything: two threads closing one
        # socket race on its descriptor (EBADF) without the GIL. The close after the join is a
        # no-op then, and still frees the socket if the thread did not end in time.
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextlib.contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    """Serves an ASGI app with uvicorn on 127.0.0.1 (a free port) in a thread."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# -- Redis ------------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nothing listens on (bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_answers(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis server on 127.0.0.1:port answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private ``redis-server`` child on a free loopback port (no persistence), which a test
    can stop and start again on the same port (the fault tests)."""

    def __init__(
        self,
        port: int | None = None,
        unix_socket: str | None = None,
        tls: tuple[str, str] | None = None,
        client_ca: str | None = None,
    ) -> None:
        self.port = port or free_port()
        #: With ``tls=(certificate, key)`` the server speaks only TLS on ``port``.
        self.tls = tls
        #: With ``client_ca`` (a PEM file) it also asks every client for a certificate signed by
        #: that CA (``--tls-auth-clients yes``).
        self.client_ca = client_ca
        self.url = f"rediss://127.0.0.1:{self.port}/#insecure" if tls else f"redis://127.0.0.1:{self.port}"
        #: Also listen on this Unix socket (``redis+unix://`` tests).
        self.unix_socket = unix_socket
        self.process: subprocess.Popen[bytes] | None = None

    def _listen_args(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        cert, key = self.tls
        args = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert, "--tls-key-file", key]
        if self.client_ca is None:
            return [*args, "--tls-auth-clients", "no"]
        return [*args, "--tls-ca-cert-file", self.client_ca, "--tls-auth-clients", "yes"]

    def _ready(self) -> bool:
        if self.tls is None:
            return redis_answers(self.port)
        # A TLS-only server cannot answer a plain PING: accepting connections is readiness.
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (py/ci.sh installs it)")
        self.process = subprocess.Popen(
            [binary, *self._listen_args(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + (["--unixsocket", self.unix_socket] if self.unix_socket else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The Redis the tests use: ``REDIS_TEST_URL`` (py/ci.sh starts one). Without it, a private
    server when ``redis-server`` is installed, else the Redis tests skip; but with ``CI`` set a
    missing or unreachable Redis fails them (they never skip silently in CI)."""
    url = os.environ.get("REDIS_TEST_URL")
    in_ci = bool(os.environ.get("CI"))
    if url:
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        if not redis_answers(port, timeout=2):
            pytest.fail(f"REDIS_TEST_URL={url} does not answer PING")
        yield url
        return
    if shutil.which("redis-server") is None:
        if in_ci:
            pytest.fail("CI is set but there is no Redis: set REDIS_TEST_URL (py/ci.sh does)")
        pytest.skip("no REDIS_TEST_URL and no redis-server installed")
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def unique() -> str:
    """A name no other test (or earlier run on the same Redis) uses: policies, keys, prefixes."""
    return f"t{uuid.uuid4().hex[:12]}"
