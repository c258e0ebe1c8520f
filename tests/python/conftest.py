"""Fixtures that run the C-only responder (the core with no Python in it) as a real process.

The binary comes from $DBRIDGE_RESPONDER (`make test-python` sets it). Every test that
uses a server runs once per I/O backend, `--io uring` and `--io epoll`: DESIGN.md asks
for the same behaviour either way. Each process a fixture starts is stopped by its PID,
and a server that died during a test, or did not exit cleanly on SIGTERM, fails it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from asgi_servers import STOP_TIMEOUT, stop_process

RESPONDER_ENV = "DBRIDGE_RESPONDER"
IO_BACKENDS = ["uring", "epoll"]
START_TIMEOUT = 10.0  # seconds until the listener must accept
PORT_ATTEMPTS = 5  # another process may take the free port between our probe and the bind


@dataclass
class RunningResponder:
    io: str
    process: subprocess.Popen
    log_path: Path
    host: str = "127.0.0.1"
    port: int | None = None
    uds: str | None = None
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}" if self.uds is None else "http://localhost"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A new client socket connected to this server (TCP or Unix domain)."""
        if self.uds is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.uds)
        else:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.settimeout(timeout)
        return sock

    def alive(self) -> bool:
        return self.process.poll() is None


def responder_binary() -> str:
    path = os.environ.get(RESPONDER_ENV)
    if not path:
        pytest.fail(
            f"${RESPONDER_ENV} is not set: point it at the built responder, e.g. "
            f"{RESPONDER_ENV}=$PWD/build/cpp/dbridge-responder (or run `make test-python`)",
            pytrace=False,
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"${RESPONDER_ENV}={path} is not an executable file (run `make build-cpp`)", pytrace=False
        )
    return path


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


READY_LINE = "Responder running on"


def _can_connect(server: RunningResponder) -> bool:
    # The ready line first: a connect alone could reach another process that took the port.
    if READY_LINE not in server.log():
        return False
    try:
        server.connect(timeout=1.0).close()
        return True
    except OSError:
        return False


def _wait_until_accepting(server: RunningResponder) -> bool:
    """True once the listener accepts; False if the process exited first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not server.alive():
            return False
        if _can_connect(server):
            return True
        time.sleep(0.02)
    stop_process(server.process)
    pytest.fail(
        f"responder (--io {server.io}) did not accept connections within {START_TIMEOUT} s; "
        f"its stderr:\n{server.log()}",
        pytrace=False,
    )


def start_responder(io: str, log_dir: Path, uds: str | None = None) -> RunningResponder:
    binary = responder_binary()
    last_log = ""
    for attempt in range(PORT_ATTEMPTS):
        log_path = log_dir / f"responder-{io}-{attempt}.log"
        args = [binary, "--io", io]
        port = None
        if uds is None:
            port = free_tcp_port()
            args += ["--host", "127.0.0.1", "--port", str(port)]
        else:
            args += ["--uds", uds]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        server = RunningResponder(io=io, process=process, log_path=log_path, port=port, uds=uds)
        if _wait_until_accepting(server):
            return server
        # Exited before accepting: most likely the port was taken in the meantime.
        stop_process(process)
        last_log = server.log()
        if uds is not None:
            break
    pytest.fail(
        f"responder (--io {io}) exited before accepting connections; its stderr:\n{last_log}", pytrace=False
    )


def finish_responder(server: RunningResponder) -> None:
    """Stops the server and fails the test if it had crashed or did not exit cleanly."""
    crashed = not server.alive()
    code = stop_process(server.process)
    server.stopped = True
    if crashed:
        pytest.fail(
            f"responder (--io {server.io}) died during the test with exit code {code}; "
            f"its stderr:\n{server.log()}",
            pytrace=False,
        )
    if code != 0:
        pytest.fail(
            f"responder (--io {server.io}) did not exit with 0 on SIGTERM "
            f"({'killed after ' + str(STOP_TIMEOUT) + ' s' if code is None else 'exit code ' + str(code)})",
            pytrace=False,
        )


@pytest.fixture(params=IO_BACKENDS)
def io_backend(request) -> str:
    return request.param


@pytest.fixture
def responder(io_backend: str, tmp_path: Path) -> Iterator[RunningResponder]:
    """A responder on 127.0.0.1 and a free port, for the test's I/O backend."""
    server = start_responder(io_backend, tmp_path)
    try:
        yield server
    finally:
        if not server.stopped:
            finish_responder(server)


@pytest.fixture
def base_url(responder: RunningResponder) -> str:
    return responder.url


@pytest.fixture
def uds_responder(io_backend: str, tmp_path: Path) -> Iterator[RunningResponder]:
    """A responder listening on a Unix-domain socket (`--uds`)."""
    # sun_path holds 108 bytes: pytest's tmp_path can be longer, so use a short directory.
    sock_dir = tempfile.mkdtemp(prefix="dbr-")
    server = start_responder(io_backend, tmp_path, uds=os.path.join(sock_dir, "r.sock"))
    try:
        yield server
    finally:
        try:
            if not server.stopped:
                finish_responder(server)
        finally:
            shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture
def client_sockets() -> Iterator[list[socket.socket]]:
    """A list to put raw client sockets in; all are closed after the test."""
    sockets: list[socket.socket] = []
    yield sockets
    for s in sockets:
        s.close()
