"""Real `dbridge-asgi` and `uvicorn` processes serving the apps in tests/apps, for the ASGI tests.

Both servers run as the user would run them, from the venv this pytest runs in:
`.venv/bin/dbridge-asgi` (next to sys.executable) and `python -m uvicorn --loop uvloop
--http httptools`, the uvicorn set-up we compare against. Each listens on 127.0.0.1 and
a free port; a server is ready once it printed its "running on" line and accepts a
connection (bounded by START_TIMEOUT). A server is stopped by its PID: SIGTERM, then
SIGKILL after STOP_TIMEOUT. Anything missing (the script, uvicorn, curl) fails the test.

The test modules write their fixtures around `serve()`, so each module picks its app and
options and gets module-scoped servers (starting a Python server costs about a second).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APPS_DIR = REPO / "tests" / "apps"
# How a dbridge-asgi test server waits for its sockets: "uring" / "epoll" are the
# reactor's wait descriptor as a reader on a stock loop (uvloop), "ring" is the io_uring
# ring as the asyncio loop's selector (--loop ring). Suites that exercise the request
# path run under each.
IO_BACKENDS = ["uring", "epoll", "ring"]

START_TIMEOUT = 20.0  # seconds until the server has said it runs and accepts a connection
STOP_TIMEOUT = 10.0  # seconds a server gets to exit after SIGTERM
PORT_ATTEMPTS = 5  # another process may take the free port between our probe and the bind
LOG_WAIT = 10.0  # seconds a log line may take to appear in the server's output file

READY_LINES = {"dbridge-asgi": "dbridge-asgi running on", "uvicorn": "Uvicorn running on"}


def dbridge_script() -> str:
    path = Path(sys.executable).parent / "dbridge-asgi"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is missing: install the package into this venv (`make install`)", pytrace=False)
    return str(path)


def require_uvicorn() -> None:
    check = subprocess.run(
        [sys.executable, "-c", "import uvicorn, uvloop, httptools"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        pytest.fail(
            f"uvicorn with uvloop and httptools is needed to compare against: {check.stderr.strip()}",
            pytrace=False,
        )


def curl_binary() -> str:
    path = shutil.which("curl")
    if path is None:
        pytest.fail("curl is not installed (Debian: apt-get install curl)", pytrace=False)
    return path


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment without the variables either server reads its options from."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DBRIDGE_ASGI_", "UVICORN_")) and name not in ("WEB_CONCURRENCY",)
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def stop_process(process: subprocess.Popen) -> int | None:
    """SIGTERM, wait, SIGKILL as the fallback. The exit code, or None if it needed SIGKILL."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


@dataclass
class ServerProcess:
    kind: str  # "dbridge-asgi" or "uvicorn"
    label: str  # for messages: "dbridge-asgi --io uring", "uvicorn"
    process: subprocess.Popen
    port: int
    stdout_path: Path
    stderr_path: Path
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.settimeout(timeout)
        return sock

    def wait_for_output(self, needle: str, stream: str = "stderr", timeout: float = LOG_WAIT) -> str:
        """The whole stream once `needle` is in it; fails the test after `timeout` seconds."""
        read = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        while True:
            text = read()
            if needle in text:
                return text
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{self.label}: {needle!r} did not appear in its {stream} within {timeout} s; "
                    f"{stream} ends with:\n{text[-3000:]}",
                    pytrace=False,
                )
            time.sleep(0.02)

    def describe_exit(self) -> str:
        return f"exit code {self.process.returncode}; stderr:\n{self.stderr()[-5000:]}"


def _command(kind: str, app: str, port: int, io: str | None, args: list[str]) -> list[str]:
    if kind == "dbridge-asgi":
        command = [dbridge_script(), app, "--host", "127.0.0.1", "--port", str(port)]
        if io == "ring":
            command += ["--io", "uring", "--loop", "ring"]
        elif io is not None:
            command += ["--io", io]
            if "--loop" not in args:
                command += ["--loop", "uvloop"]
    else:
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
        command += ["--loop", "uvloop", "--http", "httptools"]
    return command + ["--app-dir", str(APPS_DIR), *args]


def _ready(server: ServerProcess) -> bool:
    # The ready line first: a bare connect could reach another process that took the port.
    if READY_LINES[server.kind] not in server.stderr():
        return False
    try:
        server.connect(timeout=1.0).close()
        return True
    except OSError:
        return False


def start_server(
    kind: str,
    app: str,
    log_dir: Path,
    io: str | None = None,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    prefix: list[str] | None = None,
) -> ServerProcess:
    """Starts `kind` serving `app` from tests/apps and returns once it accepts connections.

    `prefix` goes before the command: a program that sets something up and execs the
    server (`prlimit --nofile=64`), so the PID is still the server's.
    """
    if kind == "uvicorn":
        require_uvicorn()
    label = kind if io is None else f"{kind} --io {io}"
    last_error = ""
    for attempt in range(PORT_ATTEMPTS):
        port = free_tcp_port()
        stem = f"{label.replace(' ', '_')}-{attempt}"
        stdout_path, stderr_path = log_dir / f"{stem}.stdout", log_dir / f"{stem}.stderr"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            process = subprocess.Popen(
                [*(prefix or []), *_command(kind, app, port, io, list(args or []))],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=REPO,
                env=server_environment(env),
            )
        server = ServerProcess(kind, label, process, port, stdout_path, stderr_path)
        deadline = time.monotonic() + START_TIMEOUT
        while server.alive() and time.monotonic() < deadline:
            if _ready(server):
                return server
            time.sleep(0.02)
        if server.alive():
            stop_process(process)
            pytest.fail(
                f"{label} did not accept connections within {START_TIMEOUT} s; stderr:\n{server.stderr()}",
                pytrace=False,
            )
        # Exited before accepting: most likely the port was taken meanwhile; try another.
        last_error = server.describe_exit()
        if "address already in use" not in last_error.lower():
            break
    pytest.fail(f"{label} exited before accepting connections: {last_error}", pytrace=False)


def finish_server(server: ServerProcess) -> None:
    """Stops the server; fails if it had died during the tests or did not exit cleanly on SIGTERM."""
    crashed = not server.alive()
    code = stop_process(server.process)
    if crashed:
        pytest.fail(f"{server.label} died while the tests ran: {server.describe_exit()}", pytrace=False)
    if server.kind == "dbridge-asgi" and code != 0:
        # DESIGN: a graceful shutdown exits 0 (uvicorn itself exits with the signal's code).
        pytest.fail(
            f"{server.label} did not exit with 0 on SIGTERM "
            f"({'killed after ' + str(STOP_TIMEOUT) + ' s' if code is None else 'exit code ' + str(code)}); "
            f"stderr:\n{server.stderr()[-5000:]}",
            pytrace=False,
        )


def serve(
    kind: str,
    app: str,
    log_dir: Path,
    io: str | None = None,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    prefix: list[str] | None = None,
) -> Iterator[ServerProcess]:
    """A fixture body: the running server, stopped (and checked) afterwards."""
    server = start_server(kind, app, log_dir, io=io, args=args, env=env, prefix=prefix)
    try:
        yield server
    finally:
        finish_server(server)


def run_to_exit(
    kind: str, app: str, args: list[str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess:
    """Runs a server that is expected to exit by itself (a failed startup): exit code and output."""
    if kind == "uvicorn":
        require_uvicorn()
    command = _command(kind, app, free_tcp_port(), None, list(args or []))
    try:
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=REPO,
            env=server_environment(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{kind} {app} did not exit within {timeout} s; stderr:\n{exc.stderr}", pytrace=False)
