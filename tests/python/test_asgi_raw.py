"""A raw ASGI 3 app end to end: the scope, receive/send, errors, logs and exit codes, against uvicorn.

The app is tests/apps/raw_app.py; no framework stands between the server and what the
test sees. Where a test compares, the same bytes go to uvicorn (uvloop, httptools) and to
dbridge-asgi (once per I/O backend), and the outcome must be the same; where we differ
on purpose, the test says why and asserts our behaviour.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_servers import IO_BACKENDS, ServerProcess, curl_binary, run_to_exit, serve
from raw_http import ResponseReader, build_request

APP = "raw_app:app"
BOOM_MARKER = "raw-app-boom-7f3c"  # raw_app.BOOM_MARKER
LIFESPAN_FAILURE_MESSAGE = "lifespan-fail-app: the database is unreachable"  # lifespan_fail_app
ROOT_PATH = "/api"
REQUEST_TIMEOUT = 30.0
VOLATILE_HEADERS = {"date", "server"}


# ---- servers -------------------------------------------------------------------------------
# All with the access log on (the default of both), so the log tests can read it.


@pytest.fixture(scope="module")
def uvicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve("uvicorn", APP, tmp_path_factory.mktemp("uvicorn-raw"))


@pytest.fixture(scope="module", params=IO_BACKENDS)
def dbridge_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from serve(
        "dbridge-asgi", APP, tmp_path_factory.mktemp(f"dbridge-raw-{request.param}"), io=request.param
    )


@pytest.fixture(scope="module")
def uvicorn_root_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve("uvicorn", APP, tmp_path_factory.mktemp("uvicorn-root"), args=["--root-path", ROOT_PATH])


@pytest.fixture(scope="module", params=IO_BACKENDS)
def dbridge_root_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from serve(
        "dbridge-asgi",
        APP,
        tmp_path_factory.mktemp(f"dbridge-root-{request.param}"),
        io=request.param,
        args=["--root-path", ROOT_PATH],
    )


@pytest.fixture
def both(uvicorn_server: ServerProcess, dbridge_server: ServerProcess) -> Iterator[list[ServerProcess]]:
    """uvicorn, then dbridge-asgi; both must still be running after the test."""
    servers = [uvicorn_server, dbridge_server]
    yield servers
    for server in servers:
        assert server.alive(), f"{server.label} died during the test: {server.describe_exit()}"


# ---- helpers -------------------------------------------------------------------------------


def raw_exchange(server: ServerProcess, request: bytes) -> tuple[Any, int]:
    """Sends `request` on a new connection; returns the response and the client's port."""
    with server.connect() as sock:
        sock.sendall(request)
        response = ResponseReader(sock).read_final_response(head_request=request.startswith(b"HEAD "))[1]
        return response, sock.getsockname()[1]


def echoed_scope(server: ServerProcess, request: bytes) -> dict[str, Any]:
    """The scope the app saw for `request`, with the ports checked and then blanked out."""
    response, client_port = raw_exchange(server, request)
    assert response.status == 200, f"{server.label}: {response.status} {response.body[:300]!r}"
    scope = json.loads(response.body)
    assert scope["client"] == ["127.0.0.1", client_port], f"{server.label}: client {scope['client']}"
    assert scope["server"] == ["127.0.0.1", server.port], f"{server.label}: server {scope['server']}"
    scope["client"][1] = scope["server"][1] = None
    return scope


def without_extensions(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope minus "extensions", which dbridge-asgi has and uvicorn does not (see below)."""
    rest = {key: value for key, value in scope.items() if key != "extensions"}
    rest["keys"] = [key for key in scope["keys"] if key != "extensions"]
    return rest


def assert_scope_like_uvicorn(ours: dict[str, Any], theirs: dict[str, Any], label: str) -> None:
    # Different on purpose: dbridge-asgi offers the http.response.pathsend extension (files
    # are written from C++ without becoming Python bytes); uvicorn offers no extension and
    # its scope has no "extensions" key. Everything else must be equal.
    assert "extensions" not in theirs
    assert ours["extensions"] == {"http.response.pathsend": {}}, f"{label}: {ours['extensions']}"
    assert without_extensions(ours) == theirs, f"{label}: scope differs from uvicorn's"


def log_count(server: ServerProcess, needle: str) -> int:
    return server.stderr().count(needle)


def wait_for_log_count(server: ServerProcess, needle: str, count: int, bound: float = 10.0) -> None:
    deadline = time.monotonic() + bound
    while log_count(server, needle) < count:
        if time.monotonic() > deadline:
            pytest.fail(
                f"{server.label}: {needle!r} not logged (expected {count} times) within {bound} s; "
                f"stderr ends with:\n{server.stderr()[-3000:]}",
                pytrace=False,
            )
        time.sleep(0.02)


def comparable_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted((name, value) for name, value in headers if name not in VOLATILE_HEADERS)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return received
        received += data


def chunk_frames(body: bytes) -> tuple[list[bytes], bool]:
    """The chunk payloads of a chunked body, and whether the last-chunk (size 0) ended it."""
    frames = []
    while body:
        size_line, sep, body = body.partition(b"\r\n")
        assert sep, f"truncated chunk size line {size_line!r}"
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            assert body == b"\r\n", f"bytes after the last-chunk: {body!r}"
            return frames, True
        frames.append(body[:size])
        assert body[size : size + 2] == b"\r\n", "chunk data not followed by CRLF"
        body = body[size + 2 :]
    return frames, False


# ---- the scope -----------------------------------------------------------------------------

SCOPE_REQUESTS = {
    "get_with_query_and_headers": build_request(
        "GET",
        "/scope/items?x=1&y=%20z&empty=",
        headers=[
            ("Host", "example.test"),
            ("User-Agent", "raw-test/1.0"),
            ("X-Mixed-Case", "Value With Spaces"),
            ("X-Dup", "1"),
            ("x-dup", "2"),
            ("X-Empty", ""),
        ],
    ),
    "http_1_0": build_request("GET", "/scope/old", headers=[("Host", "example.test")], version="HTTP/1.0"),
    "post_with_unread_body": build_request(
        "POST", "/scope/form", headers=[("Host", "h"), ("Content-Length", "5")], body=b"hello"
    ),
    "patch": build_request("PATCH", "/scope/p", headers=[("Host", "h"), ("Content-Length", "0")]),
    "percent_encoded_path": build_request(
        "GET", "/scope/caf%C3%A9/a%20b%2Fc?q=%C3%A9", headers=[("Host", "h")]
    ),
    "absolute_form_target": build_request(
        "GET", "http://example.test/scope/abs?x=1", headers=[("Host", "example.test")]
    ),
    "no_query_but_question_mark": build_request("GET", "/scope/q?", headers=[("Host", "h")]),
}


@pytest.mark.parametrize("case", sorted(SCOPE_REQUESTS))
def test_scope_matches_uvicorn(both: list[ServerProcess], case: str) -> None:
    uvicorn, dbridge = both
    request = SCOPE_REQUESTS[case]
    assert_scope_like_uvicorn(echoed_scope(dbridge, request), echoed_scope(uvicorn, request), dbridge.label)


def test_scope_follows_asgi_spec(dbridge_server: ServerProcess) -> None:
    request = build_request("GET", "/scope/spec?a=b", headers=[("Host", "h"), ("X-Upper", "V")])
    scope = echoed_scope(dbridge_server, request)
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert (scope["path_type"], scope["raw_path_type"], scope["query_string_type"]) == (
        "str",
        "bytes",
        "bytes",
    )
    assert scope["path"] == "/scope/spec" and scope["raw_path"] == "/scope/spec"
    assert scope["query_string"] == "a=b"
    assert scope["root_path"] == ""
    # Names lower-cased, values as sent, order kept, both bytes.
    assert scope["headers"] == [["host", "h"], ["x-upper", "V"]]
    assert scope["header_types"] == ["bytes,bytes"]
    # The lifespan's state, copied into every request's scope.
    assert scope["state"] == {"raw_started": True}


def test_path_is_percent_decoded_and_raw_path_is_not(both: list[ServerProcess]) -> None:
    request = build_request("GET", "/scope/caf%C3%A9/a%20b%2Fc%zz", headers=[("Host", "h")])
    for server in both:
        scope = echoed_scope(server, request)
        assert scope["path"] == "/scope/café/a b/c%zz", server.label
        assert scope["raw_path"] == "/scope/caf%C3%A9/a%20b%2Fc%zz", server.label


def test_root_path_is_prefixed_to_path_and_raw_path(
    uvicorn_root_server: ServerProcess, dbridge_root_server: ServerProcess
) -> None:
    # uvicorn >= 0.26: with --root-path the app sees the full path, root_path included.
    request = build_request("GET", "/scope/x%20y?z=1", headers=[("Host", "h")])
    ours = echoed_scope(dbridge_root_server, request)
    assert ours["root_path"] == ROOT_PATH
    assert ours["path"] == ROOT_PATH + "/scope/x y"
    assert ours["raw_path"] == ROOT_PATH + "/scope/x%20y"
    assert ours["query_string"] == "z=1"
    assert_scope_like_uvicorn(ours, echoed_scope(uvicorn_root_server, request), dbridge_root_server.label)


# ---- request and response bodies -----------------------------------------------------------


def test_one_megabyte_echo(both: list[ServerProcess]) -> None:
    data = random.Random(7).randbytes(1024 * 1024)
    for server in both:
        response = httpx.post(f"{server.url}/echo", content=data, timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, server.label
        assert response.headers["content-length"] == str(len(data)), server.label
        assert response.content == data, f"{server.label}: echoed body differs"


# The app-side flow control pauses reading above 64 KiB of unread body (uvicorn's high
# water mark): bodies just below, at and above it, sent in one write.
@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 100_000, 300_000])
def test_echo_body_sent_in_one_write(both: list[ServerProcess], size: int) -> None:
    data = random.Random(size).randbytes(size)
    request = build_request(
        "POST", "/echo", headers=[("Host", "h"), ("Content-Length", str(size))], body=data
    )
    for server in both:
        with server.connect(timeout=5.0) as sock:
            sock.sendall(request)
            try:
                response = ResponseReader(sock).read_final_response()[1]
            except TimeoutError:
                pytest.fail(
                    f"{server.label}: no response within 5 s to a {size}-byte body sent in one write",
                    pytrace=False,
                )
        assert response.status == 200, server.label
        assert response.body == data, f"{server.label}: echoed body differs"


def test_slowly_read_body(both: list[ServerProcess]) -> None:
    data = random.Random(3).randbytes(1024 * 1024)
    for server in both:
        response = httpx.post(f"{server.url}/slow-body", content=data, timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, server.label
        assert response.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}, (
            server.label
        )


def test_streamed_chunks_arrive_chunk_encoded(both: list[ServerProcess]) -> None:
    request = build_request("GET", "/stream?n=6&delay=0.02", headers=[("Host", "h"), ("Connection", "close")])
    for server in both:
        with server.connect() as sock:
            sock.sendall(request)
            received = read_until_closed(sock)
        head, _, body = received.partition(b"\r\n\r\n")
        assert b"\r\ntransfer-encoding: chunked" in head.lower(), f"{server.label}: {head!r}"
        assert b"content-length" not in head.lower(), f"{server.label}: {head!r}"
        frames, complete = chunk_frames(body)
        assert complete, f"{server.label}: no last-chunk: {body!r}"
        # Each send() its own chunk: the app paused between them, so nothing was coalesced.
        assert frames == [f"chunk-{i}\n".encode() for i in range(6)], f"{server.label}: {frames}"


# ---- the app fails -------------------------------------------------------------------------


def test_exception_before_start_gives_bare_500(both: list[ServerProcess]) -> None:
    answers = []
    error = f"RuntimeError: {BOOM_MARKER}: raised before the response started"
    for server in both:
        before = log_count(server, error)
        response = httpx.get(f"{server.url}/boom", timeout=REQUEST_TIMEOUT)
        assert response.status_code == 500, server.label
        assert response.text == "Internal Server Error", server.label
        assert response.headers["content-type"] == "text/plain; charset=utf-8", server.label
        assert response.headers["connection"] == "close", server.label
        # The traceback goes to the log, never to the client.
        assert BOOM_MARKER not in response.text and "Traceback" not in response.text
        wait_for_log_count(server, error, before + 1)
        stderr = server.stderr()
        assert "ERROR:    Exception in ASGI application" in stderr, server.label
        assert "Traceback (most recent call last):" in stderr, server.label
        answers.append(response)
    uvicorn, dbridge = answers
    assert comparable_headers(list(dbridge.headers.multi_items())) == comparable_headers(
        list(uvicorn.headers.multi_items())
    )


def test_exception_after_start_closes_the_connection(both: list[ServerProcess]) -> None:
    error = f"RuntimeError: {BOOM_MARKER}: raised after the response started"
    for server in both:
        before = log_count(server, error)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{server.url}/boom-after-start", timeout=REQUEST_TIMEOUT)
        with server.connect() as sock:
            sock.sendall(build_request("GET", "/boom-after-start"))
            received = read_until_closed(sock)
        # Closed without the last-chunk: the client can tell the response is incomplete.
        _, complete = chunk_frames(received.partition(b"\r\n\r\n")[2])
        assert not complete, f"{server.label}: {received!r}"
        assert BOOM_MARKER.encode() not in received
        wait_for_log_count(server, error, before + 2)


def test_exception_after_start_still_delivers_what_was_sent(both: list[ServerProcess]) -> None:
    # uvicorn closes with transport.close(), which sends what the app had already sent
    # (here the head and one chunk) before the FIN; a streamed response that fails late
    # (a long export, tokens from a model) keeps everything it produced before the error.
    for server in both:
        with server.connect() as sock:
            sock.sendall(build_request("GET", "/boom-after-start"))
            received = read_until_closed(sock)
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), f"{server.label}: received {received!r} before the close"
        frames, complete = chunk_frames(body)
        assert frames == [b"partial "] and not complete, f"{server.label}: body {body!r}"


def test_returning_without_response_gives_500_and_a_log_line(both: list[ServerProcess]) -> None:
    line = "ASGI callable returned without starting response."
    for server in both:
        before = log_count(server, line)
        response = httpx.get(f"{server.url}/no-response", timeout=REQUEST_TIMEOUT)
        assert response.status_code == 500, server.label
        assert response.text == "Internal Server Error", server.label
        wait_for_log_count(server, line, before + 1)
        assert f"ERROR:    {line}" in server.stderr(), server.label


def test_body_shorter_than_content_length_closes_the_connection(both: list[ServerProcess]) -> None:
    error = "RuntimeError: Response content shorter than Content-Length"
    for server in both:
        before = log_count(server, error)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{server.url}/short", timeout=REQUEST_TIMEOUT)
        with server.connect() as sock:
            sock.sendall(build_request("GET", "/short"))
            received = read_until_closed(sock)
        head, _, body = received.partition(b"\r\n\r\n")
        assert b"\r\ncontent-length: 10" in head.lower(), f"{server.label}: {head!r}"
        assert len(body) < 10, f"{server.label}: {body!r}"
        wait_for_log_count(server, error, before + 2)


# ---- receive() as apps use it -------------------------------------------------------------


def test_receive_after_a_cancelled_receive(both: list[ServerProcess]) -> None:
    # asyncio.wait_for(receive(), t) / anyio.move_on_after give up on a receive(); the next
    # receive() must wait again as uvicorn's does, not fail.
    for server in both:
        response = httpx.get(f"{server.url}/receive-cancelled", timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, server.label
        assert response.json() == {"outcomes": ["timeout", "timeout"]}, server.label


def test_two_receives_waiting_at_once(both: list[ServerProcess]) -> None:
    # Starlette's StreamingResponse waits in receive() for the disconnect while the body
    # generator calls request.is_disconnected(), itself a receive(): uvicorn lets both wait.
    for server in both:
        response = httpx.get(f"{server.url}/receive-twice", timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, server.label
        assert response.json() == {"outcomes": ["timeout", "timeout"]}, server.label


# ---- load, Expect, access log --------------------------------------------------------------


def test_one_hundred_concurrent_clients(dbridge_server: ServerProcess) -> None:
    clients, requests_each = 100, 10

    async def client(number: int, http: httpx.AsyncClient) -> list[str]:
        problems = []
        for i in range(requests_each):
            body = f"client {number} request {i} ".encode() * (1 + (number * i) % 50)
            response = await http.post("/echo", content=body)
            if response.status_code != 200 or response.content != body:
                problems.append(
                    f"client {number} request {i}: {response.status_code} {response.content[:80]!r}"
                )
            response = await http.get("/scope/c", params={"n": str(number), "i": str(i)})
            if response.status_code != 200 or response.json()["query_string"] != f"n={number}&i={i}":
                problems.append(
                    f"client {number} request {i}: scope {response.status_code} {response.text[:200]}"
                )
        return problems

    async def run_all() -> list[str]:
        https = [
            httpx.AsyncClient(base_url=dbridge_server.url, timeout=REQUEST_TIMEOUT) for _ in range(clients)
        ]
        try:
            results = await asyncio.gather(*(client(n, http) for n, http in enumerate(https)))
        finally:
            await asyncio.gather(*(http.aclose() for http in https))
        return [problem for problems in results for problem in problems]

    problems = asyncio.run(run_all())
    assert problems == [], f"{len(problems)} wrong answers, e.g. {problems[:5]}"
    assert dbridge_server.alive()


def test_expect_100_continue_with_curl(both: list[ServerProcess], tmp_path: Path) -> None:
    data = random.Random(100).randbytes(10_000)
    (tmp_path / "body").write_bytes(data)
    for server in both:
        out = tmp_path / f"out-{server.kind}"
        # --expect100-timeout: curl waits for the 100 (up to 30 s) instead of sending the
        # body after its default 1 s, so a body only arrives if the server asked for it.
        result = subprocess.run(
            [
                curl_binary(), "-sS", "-v", "--http1.1", "--max-time", "60", "--expect100-timeout", "30",
                "-H", "Expect: 100-continue", "-H", "Content-Type: application/octet-stream",
                "--data-binary", f"@{tmp_path / 'body'}", "-o", str(out), f"{server.url}/echo",
            ],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
        assert result.returncode == 0, (
            f"{server.label}: curl exit {result.returncode}: {result.stderr[-2000:]}"
        )
        assert "< HTTP/1.1 100 Continue" in result.stderr, f"{server.label}: {result.stderr[-2000:]}"
        assert "< HTTP/1.1 200 OK" in result.stderr, server.label
        assert out.read_bytes() == data, f"{server.label}: echoed body differs"


ACCESS_LINE = re.compile(r'^INFO:     127\.0\.0\.1:(\d+) - (".*)$', re.MULTILINE)


def access_line(server: ServerProcess, needle: str) -> tuple[int, str]:
    """(client port, the rest after it) of the access-log line in stdout that contains `needle`."""
    server.wait_for_output(needle, stream="stdout")
    lines = [m for m in ACCESS_LINE.finditer(server.stdout()) if needle in m.group(2)]
    assert len(lines) == 1, (
        f"{server.label}: {len(lines)} access lines with {needle!r}:\n{server.stdout()[-2000:]}"
    )
    return int(lines[0].group(1)), lines[0].group(2)


@pytest.mark.parametrize(
    "method, target, status",
    [
        ("GET", "/scope/log?q=1&id={id}", 200),
        ("POST", "/scope/caf%C3%A9/a%20b?x=%20y&id={id}", 200),
        ("GET", "/missing?id={id}", 404),
        ("GET", "/no-response?id={id}", 500),
        ("GET", "/boom?id={id}", 500),
    ],
)
def test_access_log_line_as_uvicorn(both: list[ServerProcess], method: str, target: str, status: int) -> None:
    rests = []
    for server in both:
        marker = uuid.uuid4().hex
        request = build_request(
            method, target.format(id=marker), headers=[("Host", "h"), ("Content-Length", "0")]
        )
        response, client_port = raw_exchange(server, request)
        assert response.status == status, server.label
        port, rest = access_line(server, marker)
        assert port == client_port, f"{server.label}: logged port {port}, client port {client_port}"
        rests.append(rest.replace(marker, "ID"))
    uvicorn_rest, dbridge_rest = rests
    assert dbridge_rest == uvicorn_rest
    assert uvicorn_rest.endswith(
        f" {status} " + {200: "OK", 404: "Not Found", 500: "Internal Server Error"}[status]
    )


# ---- lifespan ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "app, args",
    [("lifespan_fail_app:reports_failure", []), ("lifespan_fail_app:raises", ["--lifespan", "on"])],
    ids=["startup_failed_message", "startup_raises"],
)
def test_lifespan_startup_failure_exits_3(app: str, args: list[str]) -> None:
    for kind in ("uvicorn", "dbridge-asgi"):
        result = run_to_exit(kind, app, args)
        assert result.returncode == 3, f"{kind}: exit code {result.returncode}; stderr:\n{result.stderr}"
        assert "Application startup failed. Exiting." in result.stderr, f"{kind}: {result.stderr}"
        assert LIFESPAN_FAILURE_MESSAGE in result.stderr, f"{kind}: {result.stderr}"
        assert "running on" not in result.stderr, f"{kind} started serving: {result.stderr}"


# ---- regressions found in review -------------------------------------------------------------


def test_body_that_piles_up_past_the_high_water_mark_while_the_app_sleeps(both: list[ServerProcess]) -> None:
    # The last body bytes arrive while the app is not reading: the server pauses the
    # socket above 64 KiB and must still deliver the end of the body once the app reads.
    data = random.Random(11).randbytes(70_000)
    for server in both:
        response = httpx.post(f"{server.url}/late-read", content=data, timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, server.label
        assert response.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}, (
            server.label
        )


def live_exchanges(server: ServerProcess) -> int:
    response = httpx.get(f"{server.url}/live-exchanges", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, server.label
    return response.json()["alive"]


def test_pipelined_requests_leave_no_request_object_behind(dbridge_server: ServerProcess) -> None:
    request = build_request("GET", "/scope", headers=[("Host", "h")])
    with dbridge_server.connect() as sock:
        sock.sendall(request * 20)
        reader = ResponseReader(sock)
        for _ in range(20):
            assert reader.read_final_response()[1].status == 200
    # Only the request asking is alive (its own exchange).
    assert live_exchanges(dbridge_server) == 1


def test_receive_kept_in_the_scope_is_collected(dbridge_server: ServerProcess) -> None:
    for _ in range(10):
        assert httpx.get(f"{dbridge_server.url}/keep-receive", timeout=REQUEST_TIMEOUT).text == "ok"
    assert live_exchanges(dbridge_server) == 1


def test_send_after_a_failed_pathsend_does_not_take_the_server_down(dbridge_server: ServerProcess) -> None:
    request = build_request("GET", "/pathsend-dir", headers=[("Host", "h")])
    with dbridge_server.connect() as sock:
        sock.sendall(request)
        received = read_until_closed(sock)
    # The response had started (its head may or may not have gone out); it cannot be
    # completed, so the connection closes without the body.
    assert b"fallback" not in received
    assert dbridge_server.alive(), dbridge_server.describe_exit()
    assert httpx.get(f"{dbridge_server.url}/scope", timeout=REQUEST_TIMEOUT).status_code == 200


def test_keep_alive_timeout_does_not_cut_a_response_read_slowly(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    size = 16 * 1024 * 1024
    for io in IO_BACKENDS:
        for server in serve(
            "dbridge-asgi",
            APP,
            tmp_path_factory.mktemp(f"dbridge-ka-{io}"),
            io=io,
            args=["--timeout-keep-alive", "1"],
        ):
            with server.connect() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                sock.sendall(build_request("GET", f"/bytes?n={size}", headers=[("Host", "h")]))
                received = 0
                head = b""
                # Read slowly for longer than the keep-alive timeout.
                deadline = time.monotonic() + 2.5
                while time.monotonic() < deadline:
                    chunk = sock.recv(16 * 1024)
                    if not chunk:
                        break
                    if not head:
                        head, _, chunk = chunk.partition(b"\r\n\r\n")
                    received += len(chunk)
                    time.sleep(0.002)
                while True:
                    chunk = sock.recv(1024 * 1024)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received >= size:
                        break
            assert received == size, f"{server.label}: {received} of {size} body bytes before the close"


# ---- task factories --------------------------------------------------------------------------
# Without a task factory the core makes each request's asyncio.Task itself (skipping the
# loop's create_task wrapper); once an app or an instrumentation library installs one with
# loop.set_task_factory(), every request's task must come from it, as under uvicorn.


@pytest.mark.parametrize("kind_io", ["uvicorn", *IO_BACKENDS])
def test_requests_run_in_tasks_from_the_loops_task_factory(kind_io: str, tmp_path: Path) -> None:
    kind, io = ("uvicorn", None) if kind_io == "uvicorn" else ("dbridge-asgi", kind_io)
    for server in serve(kind, "task_factory_app:app", tmp_path, io=io):
        made = []
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as client:
            for _ in range(3):
                seen = client.get("/").json()
                assert seen["task_type"] == "CountedTask", seen
                made.append(seen["made"])
        # Each request made (at least) one task through the factory.
        assert made[0] >= 1 and made[1] > made[0] and made[2] > made[1], made


@pytest.mark.parametrize("io", IO_BACKENDS)
def test_a_task_factory_that_raises_fails_that_request_alone_and_is_logged(io: str, tmp_path: Path) -> None:
    # uvicorn lets the error escape data_received() and uvloop drops the connection; here
    # the client gets a 500, the error is logged, and the coroutine that never ran is
    # closed (no "never awaited" warning in its place).
    for server in serve("dbridge-asgi", "task_factory_app:app", tmp_path, io=io):
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as client:
            assert client.get("/refuse").status_code == 200
            refused = client.get("/")
            assert refused.status_code == 500, refused
            after = client.get("/")
            assert after.status_code == 200 and after.json()["task_type"] == "CountedTask"
        log = server.wait_for_output("task factory refused")
        assert "RuntimeError" in log, log
        assert "never awaited" not in server.stderr(), server.stderr()


def test_a_request_task_is_an_asyncio_task_named_as_usual(both: list[ServerProcess]) -> None:
    for server in both:
        scope_task = httpx.get(f"{server.url}/task", timeout=REQUEST_TIMEOUT).json()
        assert scope_task["type"] == "Task" and re.fullmatch(r"Task-\d+", scope_task["name"]), (server.label, scope_task)
