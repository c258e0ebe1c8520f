"""Graceful shutdown of one server process, observed from outside: SIGTERM/SIGINT stop
accepting, requests in flight finish, streaming responses hear http.disconnect when
--timeout-graceful-shutdown runs out, the lifespan shuts down, the exit code is 0; a
second Ctrl+C cuts the wait short."""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from asgi_servers import IO_BACKENDS, ServerProcess, start_server, stop_process
from raw_http import ResponseReader, build_request

APP = "shutdown_app:app"
SLOW_STARTED = "shutdown-app: slow request started"
STREAM_STARTED = "shutdown-app: stream started"
HELD_STARTED = "shutdown-app: held request started"
DISCONNECT_SEEN = "shutdown-app: disconnect seen"
LIFESPAN_SHUTDOWN = "shutdown-app: lifespan shutdown"
EXIT_TIMEOUT = 20.0


def started(tmp_path: Path, io: str, args: list[str] | None = None) -> ServerProcess:
    return start_server("dbridge-asgi", APP, tmp_path, io=io, args=args)


def exit_code(server: ServerProcess, timeout: float = EXIT_TIMEOUT) -> int:
    try:
        return server.process.wait(timeout=timeout)
    except Exception:
        stop_process(server.process)
        pytest.fail(f"{server.label} did not exit within {timeout} s; stderr:\n{server.stderr()[-4000:]}")


@pytest.mark.parametrize("io", IO_BACKENDS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_requests_in_flight_finish_then_lifespan_shutdown_and_exit_0(tmp_path: Path, io: str, sig: int) -> None:
    server = started(tmp_path, io)
    clients = 20
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(httpx.get, f"{server.url}/slow", timeout=30) for _ in range(clients)]
        deadline = time.monotonic() + EXIT_TIMEOUT
        while server.stderr().count(SLOW_STARTED) < clients and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.stderr().count(SLOW_STARTED) == clients, server.stderr()[-3000:]
        server.process.send_signal(sig)
        responses = [f.result() for f in futures]
    assert [(r.status_code, r.text) for r in responses] == [(200, "done")] * clients
    assert exit_code(server) == 0
    log = server.stderr()
    assert log.index("Shutting down") < log.index(LIFESPAN_SHUTDOWN) < log.index("Finished server process")
    # Nothing is accepted any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


@pytest.mark.parametrize("io", IO_BACKENDS)
def test_two_hundred_requests_in_flight_all_complete_after_sigterm(tmp_path: Path, io: str) -> None:
    # The requests are held by the app until the shutdown has begun, so all 200 are in
    # flight when SIGTERM arrives, however slowly this machine starts them.
    server = started(tmp_path, io)
    release = tmp_path / "release"
    clients = 200
    request = build_request("GET", f"/held?release={release}", headers=[("Host", "t")])
    with contextlib.ExitStack() as connections:
        sockets = [connections.enter_context(server.connect(timeout=EXIT_TIMEOUT)) for _ in range(clients)]
        for sock in sockets:
            sock.sendall(request)
        deadline = time.monotonic() + EXIT_TIMEOUT
        while server.stderr().count(HELD_STARTED) < clients and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.stderr().count(HELD_STARTED) == clients, server.stderr()[-3000:]
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_output("Shutting down")
        assert server.alive(), "the server exited with requests in flight"
        release.touch()
        answered = [(r.status, r.body) for r in (ResponseReader(sock).read_response() for sock in sockets)]
    assert answered.count((200, b"released")) == clients, sorted(set(answered))
    assert exit_code(server) == 0
    assert LIFESPAN_SHUTDOWN in server.stderr()


@pytest.mark.parametrize("io", IO_BACKENDS)
def test_a_streaming_response_hears_disconnect_when_the_graceful_timeout_runs_out(tmp_path: Path, io: str) -> None:
    server = started(tmp_path, io, ["--timeout-graceful-shutdown", "1"])
    with httpx.stream("GET", f"{server.url}/forever", timeout=30) as response:
        stream = response.iter_bytes()
        assert next(stream).startswith(b"tick")
        server.wait_for_output(STREAM_STARTED)
        server.process.send_signal(signal.SIGTERM)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, StopIteration)):
            for _ in range(10_000):
                next(stream)
    assert exit_code(server) == 0
    log = server.stderr()
    assert DISCONNECT_SEEN in log and LIFESPAN_SHUTDOWN in log


@pytest.mark.parametrize("kind", ["uvicorn", "dbridge-asgi"])
def test_a_request_not_answered_by_the_graceful_timeout_gets_a_500(tmp_path: Path, kind: str) -> None:
    server = start_server(kind, APP, tmp_path, args=["--timeout-graceful-shutdown", "1"])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(httpx.get, f"{server.url}/hang", timeout=30)
        server.wait_for_output("shutdown-app: hanging request started")
        server.process.send_signal(signal.SIGTERM)
        response = future.result()
    assert response.status_code == 500
    exit_code(server)
    assert "timeout graceful shutdown exceeded" in server.stderr()
    assert LIFESPAN_SHUTDOWN in server.stderr()


def test_a_second_ctrl_c_ends_the_wait_at_once(tmp_path: Path) -> None:
    # No graceful timeout: the first SIGINT would wait for /forever as long as it lasts.
    server = started(tmp_path, "uring")
    with httpx.stream("GET", f"{server.url}/forever", timeout=30) as response:
        stream = response.iter_bytes()
        assert next(stream).startswith(b"tick")
        server.process.send_signal(signal.SIGINT)
        server.wait_for_output("Waiting for connections to close. (CTRL+C to force quit)")
        assert server.alive(), "the first Ctrl+C must wait for the stream"
        server.process.send_signal(signal.SIGINT)
        assert exit_code(server) is not None
    # Forced: the lifespan is not run again on the way out.
    assert LIFESPAN_SHUTDOWN not in server.stderr()
