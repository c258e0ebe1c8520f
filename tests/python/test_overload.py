"""Slow peers, overload and resets against a real server, on io_uring and on epoll.

The app is tests/apps/overload_app.py. What the server holds is read from outside: its
memory from /proc/PID/status (VmRSS) and its counters (open connections, requests in
progress, timeouts) from the JSON it writes on SIGUSR2 when DBRIDGE_ASGI_DEBUG_STATS_FILE
is set. Memory bounds are generous on purpose (a leak or an unbounded buffer grows by
gigabytes here); nothing asserts how long anything took, every wait is only bounded.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import shutil
import signal
import socket
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_servers import ServerProcess, serve

APP = "overload_app:app"
BACKENDS = ["uring", "epoll"]
WAIT = 60.0  # seconds any awaited state may take to come about on a loaded machine
RSS_GROWTH_LIMIT = 200 * 1024 * 1024  # bytes; what "bounded" means in these tests
HEADER_TIMEOUT = 2.0
SEND_TIMEOUT = 3.0
CONCURRENCY_LIMIT = 4

SLOWLORIS_CLIENTS = 1000
SLOW_READERS = 1000
SLOW_READ_MIB = 64  # each slow reader asks for this much: 64 GB in all, if it were buffered
MANY_CONNECTIONS = 10_000


# ---- servers ------------------------------------------------------------------------------


def _raise_nofile_limit() -> int:
    """Raise this process's descriptor limit to the hard limit (servers started later inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _serve(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    io: str,
    args: list[str],
    prefix: list[str] | None = None,
) -> Iterator[Any]:
    _raise_nofile_limit()
    log_dir = tmp_path_factory.mktemp(f"overload-{name}-{io}")
    stats_file = log_dir / "stats.json"
    env = {"DBRIDGE_ASGI_DEBUG_STATS_FILE": str(stats_file)}
    for server in serve("dbridge-asgi", APP, log_dir, io=io, args=args, env=env, prefix=prefix):
        yield Server(server, stats_file)


class Server:
    def __init__(self, process: ServerProcess, stats_file: Path) -> None:
        self.process = process
        self.stats_file = stats_file

    @property
    def pid(self) -> int:
        return self.process.process.pid

    def stats(self) -> dict[str, int]:
        """The worker's counters, as the server writes them on SIGUSR2."""
        self.stats_file.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGUSR2)
        deadline = time.monotonic() + WAIT
        while not self.stats_file.exists():
            assert self.process.alive(), f"the server died: {self.process.describe_exit()}"
            assert time.monotonic() < deadline, f"no stats in {self.stats_file} {WAIT} s after SIGUSR2"
            time.sleep(0.05)
        return json.loads(self.stats_file.read_text())

    def wait_for_stats(self, what: str, condition: Any) -> dict[str, int]:
        deadline = time.monotonic() + WAIT
        while True:
            stats = self.stats()
            if condition(stats):
                return stats
            assert time.monotonic() < deadline, (
                f"{self.process.label}: {what} not reached within {WAIT} s: {stats}"
            )
            time.sleep(0.1)

    def wait_until_idle(self) -> dict[str, int]:
        return self.wait_for_stats(
            "no open connection and no request in progress",
            lambda s: s["open_connections"] == 0 and s["active_requests"] == 0,
        )

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/PID/status")

    def get(self, path: str) -> httpx.Response:
        # A fresh connection, closed afterwards: the counters then show only the clients under test.
        with httpx.Client(base_url=self.process.url, timeout=WAIT) as client:
            return client.get(path, headers={"connection": "close"})


@pytest.fixture(scope="module", params=BACKENDS)
def slow_header_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from _serve(tmp_path_factory, "header", request.param, ["--header-timeout", str(HEADER_TIMEOUT)])


@pytest.fixture(scope="module", params=BACKENDS)
def default_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from _serve(tmp_path_factory, "default", request.param, [])


@pytest.fixture(scope="module", params=BACKENDS)
def send_timeout_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from _serve(tmp_path_factory, "send", request.param, ["--timeout-send", str(SEND_TIMEOUT)])


@pytest.fixture(scope="module", params=BACKENDS)
def limited_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from _serve(
        tmp_path_factory, "limited", request.param, ["--limit-concurrency", str(CONCURRENCY_LIMIT)]
    )


# ---- raw clients ----------------------------------------------------------------------------


def connect_many(server: Server, count: int, receive_buffer: int | None = None) -> list[socket.socket]:
    """`count` connected sockets, connected in batches so the listen backlog never overflows."""
    sockets: list[socket.socket] = []
    selector = selectors.DefaultSelector()
    try:
        while len(sockets) < count:
            batch = []
            for _ in range(min(500, count - len(sockets))):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                if receive_buffer is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", server.process.port))
                selector.register(sock, selectors.EVENT_WRITE)
                batch.append(sock)
            sockets.extend(batch)
            pending = len(batch)
            deadline = time.monotonic() + WAIT
            while pending:
                assert time.monotonic() < deadline, f"{pending} connections not established within {WAIT} s"
                for key, _ in selector.select(timeout=1.0):
                    sock = key.fileobj
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    assert error == 0, f"connect failed: {os.strerror(error)}"
                    selector.unregister(sock)
                    pending -= 1
    except BaseException:
        close_all(sockets)
        raise
    finally:
        selector.close()
    return sockets


def close_all(sockets: list[socket.socket], reset: bool = False) -> None:
    for sock in sockets:
        if reset:
            # SO_LINGER with a zero timeout: close() sends RST, as a crashed client would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def read_until_closed(sockets: list[socket.socket], what: str) -> dict[socket.socket, bytes]:
    """Everything each socket receives until the server closes it (EOF or reset)."""
    received = {sock: b"" for sock in sockets}
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + WAIT
    open_count = len(sockets)
    try:
        while open_count:
            assert time.monotonic() < deadline, (
                f"{open_count} of {len(sockets)} {what} not closed within {WAIT} s"
            )
            for key, _ in selector.select(timeout=1.0):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BlockingIOError) as exc:
                    if isinstance(exc, BlockingIOError):
                        continue
                    data = b""
                if data:
                    received[sock] += data
                else:
                    selector.unregister(sock)
                    open_count -= 1
    finally:
        selector.close()
    return received


def exchange_all(sockets: list[socket.socket], request: bytes) -> dict[socket.socket, bytes]:
    """Sends `request` on every socket and reads until each has a complete small response."""
    for sock in sockets:
        sock.setblocking(True)
        sock.sendall(request)
        sock.setblocking(False)
    received = {sock: b"" for sock in sockets}
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    waiting = len(sockets)
    deadline = time.monotonic() + WAIT
    try:
        while waiting:
            assert time.monotonic() < deadline, (
                f"{waiting} of {len(sockets)} responses missing after {WAIT} s"
            )
            for key, _ in selector.select(timeout=1.0):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                received[sock] += data
                if not data or (b"\r\n\r\n" in received[sock] and received[sock].endswith(b"ok")):
                    selector.unregister(sock)
                    waiting -= 1
    finally:
        selector.close()
    return received


GET_ROOT = b"GET / HTTP/1.1\r\nhost: test\r\n\r\n"


# ---- slowloris --------------------------------------------------------------------------------


def test_slowloris_clients_get_408_while_others_are_served(slow_header_server: Server) -> None:
    server = slow_header_server
    rss_before = server.rss()
    slow = connect_many(server, SLOWLORIS_CLIENTS)
    try:
        head = b"GET / HTTP/1.1\r\nhost: test\r\nx-slow: " + b"a" * 64
        served = []
        # A byte a second from each: the header timeout never restarts, so the server
        # answers 408 after HEADER_TIMEOUT whatever the bytes do.
        for i in range(int(HEADER_TIMEOUT) + 3):
            for sock in slow:
                try:
                    sock.send(head[i : i + 1])
                except OSError:
                    pass  # already answered and closed
            served.append(server.get("/").status_code)
            time.sleep(1.0)
        rss_during = server.rss()
        received = read_until_closed(slow, "slowloris connections")
    finally:
        close_all(slow)
    assert served == [200] * len(served), f"ordinary clients were not served meanwhile: {served}"
    answers = [data.split(b"\r\n", 1)[0] for data in received.values()]
    # A client closed before its first byte arrived is closed silently; any other gets 408.
    assert set(answers) <= {b"HTTP/1.1 408 Request Timeout", b""}, f"slow clients got: {set(answers)}"
    answered = answers.count(b"HTTP/1.1 408 Request Timeout")
    assert answered > 0
    stats = server.wait_until_idle()
    assert stats["timeouts"] == answered, (
        f"{answered} clients got 408, the server counted {stats['timeouts']}"
    )
    print(f"slowloris: {answered} of {SLOWLORIS_CLIENTS} slow clients answered 408, the others closed")
    assert rss_during - rss_before < RSS_GROWTH_LIMIT, (
        f"RSS grew by {(rss_during - rss_before) >> 20} MiB with {SLOWLORIS_CLIENTS} slow clients"
    )
    print(
        f"slowloris: RSS {rss_before >> 20} MiB before, {rss_during >> 20} MiB with {SLOWLORIS_CLIENTS} clients"
    )


# ---- slow readers and resets --------------------------------------------------------------------


def test_slow_readers_hold_bounded_memory_and_their_reset_leaks_nothing(default_server: Server) -> None:
    server = default_server
    server.wait_until_idle()
    rss_before = server.rss()
    readers = connect_many(server, SLOW_READERS, receive_buffer=4096)
    try:
        for sock in readers:
            sock.setblocking(True)
            sock.sendall(f"GET /stream?mb={SLOW_READ_MIB} HTTP/1.1\r\nhost: test\r\n\r\n".encode())
        # The apps stay in send(): were the responses buffered instead, they would have
        # finished (and the memory below would hold 64 GB).
        server.wait_for_stats(
            "every slow reader's request in progress", lambda s: s["active_requests"] == SLOW_READERS
        )
        peak = rss_before
        for _ in range(10):
            assert server.get("/").status_code == 200
            peak = max(peak, server.rss())
            time.sleep(0.2)
        assert server.stats()["active_requests"] == SLOW_READERS, (
            "a response to a client that reads nothing completed"
        )
    finally:
        close_all(readers, reset=True)
    assert peak - rss_before < RSS_GROWTH_LIMIT, (
        f"RSS grew by {(peak - rss_before) >> 20} MiB with {SLOW_READERS} clients not reading "
        f"{SLOW_READ_MIB} MiB each"
    )
    print(f"slow-read: RSS {rss_before >> 20} MiB before, peak {peak >> 20} MiB with {SLOW_READERS} readers")
    server.wait_until_idle()


def test_clients_resetting_mid_upload_leave_no_connection_behind(default_server: Server) -> None:
    server = default_server
    server.wait_until_idle()
    uploaders = connect_many(server, 20)
    try:
        for sock in uploaders:
            sock.setblocking(True)
            sock.sendall(
                b"POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: 10000000\r\n\r\n" + b"u" * 100_000
            )
        server.wait_for_stats("every upload in progress", lambda s: s["active_requests"] == len(uploaders))
    finally:
        close_all(uploaders, reset=True)
    server.wait_until_idle()
    assert server.get("/").status_code == 200


def test_ten_thousand_connections_are_each_served(default_server: Server) -> None:
    hard = _raise_nofile_limit()
    needed = MANY_CONNECTIONS + 200
    if hard < needed:
        pytest.skip(f"RLIMIT_NOFILE hard limit is {hard}; {needed} descriptors are needed per process")
    server = default_server
    server.wait_until_idle()
    clients = connect_many(server, MANY_CONNECTIONS)
    try:
        server.wait_for_stats(
            "every connection accepted", lambda s: s["open_connections"] == MANY_CONNECTIONS
        )
        received = exchange_all(clients, GET_ROOT)
    finally:
        close_all(clients)
    statuses = {data.split(b"\r\n", 1)[0] for data in received.values()}
    assert statuses == {b"HTTP/1.1 200 OK"}, f"answers: {statuses}"
    server.wait_until_idle()


# ---- a client that stops reading ------------------------------------------------------------------


def test_a_send_to_a_client_that_stops_reading_times_out(send_timeout_server: Server) -> None:
    server = send_timeout_server
    key = uuid.uuid4().hex
    sock = connect_many(server, 1, receive_buffer=4096)[0]
    try:
        sock.setblocking(True)
        sock.sendall(f"GET /stream-until-gone?id={key} HTTP/1.1\r\nhost: test\r\n\r\n".encode())
        # The app is blocked in send() until the server gives up on the client and tells
        # it the client is gone (http.disconnect); its later sends are dropped.
        deadline = time.monotonic() + WAIT
        while (outcome := server.get(f"/outcome?id={key}").text) != "disconnected":
            assert outcome == "streaming", outcome
            assert time.monotonic() < deadline, f"the app was not told within {WAIT} s"
            time.sleep(0.2)
        sock.setblocking(False)
        read_until_closed([sock], "stalled connection")
    finally:
        close_all([sock])
    stats = server.wait_until_idle()
    assert stats["send_timeouts"] >= 1
    server.process.wait_for_output("read none of the response")


def test_a_slow_but_steady_reader_is_not_timed_out(send_timeout_server: Server) -> None:
    server = send_timeout_server
    before = server.stats()["send_timeouts"]
    sock = connect_many(server, 1, receive_buffer=4096)[0]
    try:
        sock.setblocking(True)
        sock.sendall(b"GET /stream?mb=2 HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        received = 0
        while data := sock.recv(16384):
            received += len(data)
            time.sleep(0.001)  # reads, slowly: progress within every send timeout period
    finally:
        close_all([sock])
    assert received > 2 * 1024 * 1024
    assert server.stats()["send_timeouts"] == before


# ---- overload ------------------------------------------------------------------------------------


def test_limit_concurrency_answers_503_at_the_limit_and_recovers(limited_server: Server) -> None:
    server = limited_server
    server.wait_until_idle()
    holders = connect_many(server, CONCURRENCY_LIMIT)
    try:
        for sock in holders:
            sock.setblocking(True)
            sock.sendall(b"GET /hold HTTP/1.1\r\nhost: test\r\n\r\n")
        server.wait_for_stats("the limit reached", lambda s: s["active_requests"] == CONCURRENCY_LIMIT)
        over = server.get("/")
    finally:
        close_all(holders)
    assert over.status_code == 503, over.text
    server.wait_until_idle()
    assert server.get("/").status_code == 200


# ---- out of descriptors ----------------------------------------------------------------------------

FD_LIMIT = 64
FD_CLIENTS = 200


@pytest.mark.parametrize("io", BACKENDS)
def test_out_of_descriptors_the_server_waits_and_serves_everyone(
    io: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if shutil.which("prlimit") is None:
        pytest.fail("prlimit is not installed (Debian: util-linux)", pytrace=False)
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        # Seen under `make test-asan`: UBSan's vptr check reads type information through a
        # pipe it opens (sanitizer_common's IsAccessibleMemoryRange), so with no descriptor
        # left it reports a valid object as "invalid vptr".
        pytest.skip("the sanitizers need free descriptors themselves: no valid result when there are none")
    # Started under the limit: io_uring reads RLIMIT_NOFILE when an accept is queued, so a
    # limit lowered later would not reach a multishot accept already in the kernel.
    for server in _serve(
        tmp_path_factory, "fds", io, [], prefix=["prlimit", f"--nofile={FD_LIMIT}:{FD_LIMIT}"]
    ):
        clients = connect_many(server, FD_CLIENTS)  # the kernel queues what the server cannot accept
        try:
            deadline = time.monotonic() + WAIT
            while len(os.listdir(f"/proc/{server.pid}/fd")) < FD_LIMIT:
                assert time.monotonic() < deadline, "the server never ran out of descriptors"
                time.sleep(0.05)
            assert server.process.alive(), server.process.describe_exit()
            # As the served clients go, the waiting ones are accepted and served in turn.
            received = exchange_all(clients, b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        finally:
            close_all(clients)
        statuses = {data.split(b"\r\n", 1)[0] for data in received.values()}
        assert statuses == {b"HTTP/1.1 200 OK"}, f"answers: {statuses}"
        stats = server.wait_until_idle()
        assert stats["accept_errors"] > 0, stats
        assert server.get("/").status_code == 200
