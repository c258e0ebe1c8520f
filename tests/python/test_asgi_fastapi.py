"""A FastAPI app end to end, differential: every request goes to uvicorn and to dbridge-asgi.

The app is tests/apps/fastapi_app.py. Both servers run as real processes (uvicorn with
uvloop and httptools; dbridge-asgi once per I/O backend) and get the same request from
httpx; the responses must have the same status, the same body and the same headers,
Date and Server apart (those say when and who). A difference we make on purpose is
asserted explicitly, with the reason next to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_servers import IO_BACKENDS, ServerProcess, serve

APP = "fastapi_app:app"
FILES_DIR_ENV = "ASGI_TEST_FILES_DIR"  # fastapi_app.FILES_DIR_ENV
CORS_ORIGIN = "https://app.example"  # fastapi_app.CORS_ORIGIN
REQUEST_TIMEOUT = 30.0
POLL_BOUND = 10.0  # seconds to wait for something the app does after the response

# Headers that differ between any two servers, or two runs of one: when and who.
VOLATILE_HEADERS = {"date", "server"}


# ---- servers and clients -------------------------------------------------------------------


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests write the files FileResponse serves; both servers serve the same files,
    so ETag and Last-Modified (made from size and mtime) must agree too."""
    return tmp_path_factory.mktemp("served-files")


@pytest.fixture(scope="module")
def uvicorn_server(files_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve(
        "uvicorn",
        APP,
        tmp_path_factory.mktemp("uvicorn-fastapi"),
        args=["--no-access-log"],
        env={FILES_DIR_ENV: str(files_dir)},
    )


@pytest.fixture(scope="module", params=IO_BACKENDS)
def dbridge_server(
    request: pytest.FixtureRequest, files_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from serve(
        "dbridge-asgi",
        APP,
        tmp_path_factory.mktemp(f"dbridge-fastapi-{request.param}"),
        io=request.param,
        args=["--no-access-log"],
        env={FILES_DIR_ENV: str(files_dir)},
    )


def comparable_headers(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted(
        (name, value) for name, value in response.headers.multi_items() if name not in VOLATILE_HEADERS
    )


@dataclass
class Responses:
    """One request's answer from each server."""

    uvicorn: httpx.Response
    dbridge: httpx.Response
    dbridge_label: str

    def assert_same(self, except_headers: tuple[str, ...] = ()) -> httpx.Response:
        """Status, body and headers (Date, Server and `except_headers` apart) equal; returns
        dbridge-asgi's response. A test that excepts a header asserts it on its own."""
        u, d = self.uvicorn, self.dbridge
        request = f"{d.request.method} {d.request.url.raw_path.decode()}"
        assert d.status_code == u.status_code, (
            f"{request}: status {d.status_code} from {self.dbridge_label}, {u.status_code} from uvicorn; "
            f"bodies: {d.content[:300]!r} / {u.content[:300]!r}"
        )
        ours = [(n, v) for n, v in comparable_headers(d) if n not in except_headers]
        theirs = [(n, v) for n, v in comparable_headers(u) if n not in except_headers]
        assert ours == theirs, (
            f"{request}: headers differ\n  {self.dbridge_label}: {ours}\n  uvicorn: {theirs}"
        )
        # In the order sent: a later Set-Cookie for the same name wins in a browser. A test
        # that excepts it (an expires= of "now") compares it on its own.
        if "set-cookie" not in except_headers:
            assert d.headers.get_list("set-cookie") == u.headers.get_list("set-cookie")
        assert d.content == u.content, (
            f"{request}: bodies differ ({len(d.content)} bytes from {self.dbridge_label}, "
            f"{len(u.content)} from uvicorn): {d.content[:300]!r} / {u.content[:300]!r}"
        )
        return d


class ServerPair:
    def __init__(self, uvicorn: ServerProcess, dbridge: ServerProcess) -> None:
        self.uvicorn_server = uvicorn
        self.dbridge_server = dbridge
        self.uvicorn = httpx.Client(base_url=uvicorn.url, timeout=REQUEST_TIMEOUT)
        self.dbridge = httpx.Client(base_url=dbridge.url, timeout=REQUEST_TIMEOUT)

    def both(self, method: str, url: str, **kwargs: Any) -> Responses:
        """The same request to uvicorn, then to dbridge-asgi. Cookies are never carried over:
        a test that sends one says so in its headers."""
        answers = []
        for client in (self.uvicorn, self.dbridge):
            answers.append(client.request(method, url, **kwargs))
            client.cookies.clear()
        return Responses(answers[0], answers[1], self.dbridge_server.label)

    def same(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.both(method, url, **kwargs).assert_same()

    def close(self) -> None:
        self.uvicorn.close()
        self.dbridge.close()


@pytest.fixture
def servers(uvicorn_server: ServerProcess, dbridge_server: ServerProcess) -> Iterator[ServerPair]:
    pair = ServerPair(uvicorn_server, dbridge_server)
    try:
        yield pair
    finally:
        pair.close()
    for server in (uvicorn_server, dbridge_server):
        assert server.alive(), f"{server.label} died during the test: {server.describe_exit()}"


def poll_json(
    client: httpx.Client, url: str, done: Any, what: str, server: ServerProcess | None = None
) -> Any:
    """GETs `url` until `done(json)` holds; fails after POLL_BOUND seconds (with the server's stderr)."""
    deadline = time.monotonic() + POLL_BOUND
    while True:
        payload = client.get(url).json()
        if done(payload):
            return payload
        if time.monotonic() > deadline:
            log = "" if server is None else f"; its stderr ends with:\n{server.stderr()[-3000:]}"
            pytest.fail(
                f"{what}: not seen within {POLL_BOUND} s (last answer {payload!r}){log}", pytrace=False
            )
        time.sleep(0.05)


# ---- path, query and JSON bodies -----------------------------------------------------------


def test_path_and_query_parameters(servers: ServerPair) -> None:
    response = servers.same("GET", "/items/42", params={"q": "blue sky", "limit": "3"})
    assert response.status_code == 200
    assert response.json() == {"item_id": 42, "q": "blue sky", "limit": 3}


def test_path_parameter_of_wrong_type_is_422(servers: ServerPair) -> None:
    response = servers.same("GET", "/items/forty-two")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "item_id"]


def test_percent_encoded_path_parameter_is_decoded(servers: ServerPair) -> None:
    response = servers.same("GET", "/paths/caf%C3%A9/a%20b", params={"x": "1 2"})
    assert response.json()["rest"] == "café/a b"


def test_json_body_into_model(servers: ServerPair) -> None:
    item = {"name": "pen", "price": 1.5, "tags": ["office", "blue"]}
    response = servers.same("POST", "/items", json=item)
    assert response.status_code == 201
    assert response.json() == item


def test_invalid_json_body_is_422_with_details(servers: ServerPair) -> None:
    response = servers.same("POST", "/items", json={"name": "", "price": -1})
    assert response.status_code == 422
    assert sorted(error["loc"][-1] for error in response.json()["detail"]) == ["name", "price"]


def test_malformed_json_is_422(servers: ServerPair) -> None:
    response = servers.same(
        "POST", "/items", content=b'{"name": "pen", "price":', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_put_with_path_parameter_and_body(servers: ServerPair) -> None:
    response = servers.same("PUT", "/items/7", json={"name": "ink", "price": 3})
    assert response.json() == {"item_id": 7, "item": {"name": "ink", "price": 3.0, "tags": []}}


# ---- forms and uploads ---------------------------------------------------------------------


def test_urlencoded_form(servers: ServerPair) -> None:
    response = servers.same("POST", "/form", data={"name": "Zoë & co", "age": "41"})
    assert response.json() == {"name": "Zoë & co", "age": 41}


def test_form_missing_field_is_422(servers: ServerPair) -> None:
    response = servers.same("POST", "/form", data={"name": "x"})
    assert response.status_code == 422


def test_multipart_upload_of_one_megabyte(servers: ServerPair) -> None:
    data = random.Random(1).randbytes(1024 * 1024)
    response = servers.same(
        "POST",
        "/upload",
        files={"file": ("blob.bin", data, "application/octet-stream")},
        data={"note": "a megabyte"},
    )
    assert response.json() == {
        "filename": "blob.bin",
        "content_type": "application/octet-stream",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": "a megabyte",
    }


# ---- headers and cookies -------------------------------------------------------------------


def test_reads_header_and_cookie_and_sets_cookies(servers: ServerPair) -> None:
    response = servers.same(
        "GET", "/whoami", headers={"x-token": "t-123", "cookie": "session=s-456; other=1"}
    )
    assert response.json() == {"x_token": "t-123", "session": "s-456"}
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert cookies[0].startswith("visited=yes;") and "HttpOnly" in cookies[0]
    assert cookies[1].startswith("flavour=oatmeal;") and "Path=/whoami" in cookies[1]


def test_delete_cookie(servers: ServerPair) -> None:
    # The cookie's expires= is "now", formatted to the second by the app: the two
    # servers may answer in different seconds, so it is compared without it.
    responses = servers.both("GET", "/logout")
    without_expires = [
        re.sub(r"expires=[^;]+; ", "", r.headers["set-cookie"])
        for r in (responses.dbridge, responses.uvicorn)
    ]
    assert without_expires[0] == without_expires[1]
    responses.assert_same(except_headers=("set-cookie",))
    assert responses.dbridge.headers["set-cookie"].startswith('session="";')


# ---- streaming and files -------------------------------------------------------------------


def test_streaming_response_is_chunked(servers: ServerPair) -> None:
    response = servers.same("GET", "/stream", params={"n": "20"})
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert response.text == "".join(f"line {i}\n" for i in range(20))


def write_served_file(files_dir: Path, name: str, size: int) -> bytes:
    data = random.Random(name).randbytes(size)
    path = files_dir / name
    path.write_bytes(data)
    # A fixed mtime: Last-Modified and ETag then do not depend on when the test ran.
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return data


# FileResponse: Starlette sends http.response.pathsend where the scope offers the extension
# (dbridge-asgi does; uvicorn does not and gets the file as body chunks). Different on
# purpose, then: a pathsend response passes GZipMiddleware untouched ("Don't apply GZip to
# pathsend responses", starlette/middleware/gzip.py), so it is never compressed and gets
# no "Vary: Accept-Encoding" (it does not vary by it); uvicorn's goes through the
# middleware, which adds the Vary even when it does not compress. The file tests ask for
# identity encoding, compare everything but Vary, and assert Vary for each server.
# test_pathsend_file_is_not_gzipped shows the gzip side.
IDENTITY = {"accept-encoding": "identity"}


def same_file_response(servers: ServerPair, url: str, headers: dict[str, str]) -> httpx.Response:
    both = servers.both("GET", url, headers=headers)
    response = both.assert_same(except_headers=("vary",))
    assert both.dbridge.headers["vary"] == "Origin"  # CORS only: the body never depends on Accept-Encoding
    assert both.uvicorn.headers["vary"] == "Accept-Encoding, Origin"
    return response


def test_file_response(servers: ServerPair, files_dir: Path) -> None:
    data = write_served_file(files_dir, "data.bin", 300 * 1024 + 7)
    response = same_file_response(servers, "/files/data.bin", IDENTITY)
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["etag"] and response.headers["last-modified"]
    assert response.headers["accept-ranges"] == "bytes"


def resident_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_large_file_is_sent_a_piece_at_a_time(servers: ServerPair, files_dir: Path) -> None:
    # pathsend must not load the file into memory: the server queues at most the
    # high-water mark and reads on as the client takes the bytes.
    size = 64 * 1024 * 1024
    data = write_served_file(files_dir, "large.bin", size)
    server = servers.dbridge_server
    before = resident_kib(server.process.pid)
    digest = hashlib.sha256()
    received = 0
    with httpx.stream("GET", f"{server.url}/files/large.bin", headers=IDENTITY, timeout=REQUEST_TIMEOUT) as r:
        assert r.status_code == 200
        peak = before
        for chunk in r.iter_bytes(1024 * 1024):
            digest.update(chunk)
            received += len(chunk)
            if received % (8 * 1024 * 1024) < 1024 * 1024:
                peak = max(peak, resident_kib(server.process.pid))
    assert received == size
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    grown_mib = (peak - before) / 1024
    assert grown_mib < 16, f"server RSS grew by {grown_mib:.0f} MiB while sending a 64 MiB file"


def test_pathsend_file_is_not_gzipped(servers: ServerPair, files_dir: Path) -> None:
    text = "".join(f"note {i}\n" for i in range(3000))
    (files_dir / "notes.txt").write_text(text)
    os.utime(files_dir / "notes.txt", (1_700_000_000, 1_700_000_000))
    both = servers.both("GET", "/files/notes.txt", headers={"accept-encoding": "gzip"})
    u, d = both.uvicorn, both.dbridge
    # Different on purpose (see IDENTITY above): the pathsend response is not compressed.
    assert u.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in d.headers
    assert d.headers["content-length"] == str(len(text))
    assert d.headers["vary"] == "Origin"
    assert u.headers["vary"] == "Accept-Encoding, Origin"
    # Everything else as uvicorn's: the same file, the same validators.
    assert d.status_code == u.status_code == 200
    assert d.text == u.text == text
    for name in ("content-type", "etag", "last-modified", "accept-ranges"):
        assert d.headers[name] == u.headers[name], name


def test_file_response_to_head(servers: ServerPair, files_dir: Path) -> None:
    write_served_file(files_dir, "head.bin", 4096)
    response = servers.same("HEAD", "/files/head.bin", headers=IDENTITY)
    assert response.content == b""
    assert response.headers["content-length"] == "4096"


def test_file_range_request(servers: ServerPair, files_dir: Path) -> None:
    # A 206 is never compressed (GZipMiddleware leaves partial responses alone) nor sent
    # with pathsend (Starlette reads the range itself): the default Accept-Encoding is fine.
    data = write_served_file(files_dir, "ranged.bin", 10_000)
    response = servers.same("GET", "/files/ranged.bin", headers={"range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 100-199/10000"
    assert response.content == data[100:200]


def test_file_download_has_content_disposition(servers: ServerPair, files_dir: Path) -> None:
    write_served_file(files_dir, "q3.csv", 2000)
    response = same_file_response(servers, "/download/q3.csv", IDENTITY)
    assert response.headers["content-disposition"] == 'attachment; filename="report-q3.csv"'


def test_missing_file_is_404(servers: ServerPair) -> None:
    response = servers.same("GET", "/files/not-there.bin")
    assert response.status_code == 404


# ---- middleware: gzip, CORS ----------------------------------------------------------------


def test_gzip_when_the_client_accepts_it(servers: ServerPair) -> None:
    both = servers.both("GET", "/big", headers={"accept-encoding": "gzip"})
    response = both.assert_same()
    assert response.headers["content-encoding"] == "gzip"
    # CORSMiddleware with credentials varies on Origin as well.
    assert response.headers["vary"] == "Accept-Encoding, Origin"
    assert response.text.startswith("row 00000:")


def test_no_gzip_when_the_client_does_not_accept_it(servers: ServerPair) -> None:
    response = servers.same("GET", "/big", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in response.headers


def test_gzip_of_a_streaming_response(servers: ServerPair) -> None:
    response = servers.same("GET", "/big-stream", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.text.count("\n") == 200


def test_cors_simple_request(servers: ServerPair) -> None:
    response = servers.same("GET", "/items", headers={"origin": CORS_ORIGIN})
    assert response.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-expose-headers"] == "x-total-count"
    assert response.headers["x-total-count"] == "3"


def test_cors_preflight(servers: ServerPair) -> None:
    response = servers.same(
        "OPTIONS",
        "/items",
        headers={
            "origin": CORS_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-token, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert response.headers["access-control-max-age"] == "600"


def test_cors_preflight_from_unknown_origin_is_400(servers: ServerPair) -> None:
    response = servers.same(
        "OPTIONS",
        "/items",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert response.status_code == 400


# ---- errors, routing, HEAD, redirects ------------------------------------------------------


def test_http_exception_with_headers(servers: ServerPair) -> None:
    response = servers.same("GET", "/teapot")
    assert response.status_code == 418
    assert response.json() == {"detail": {"reason": "short and stout"}}
    assert response.headers["x-kettle"] == "no"


def test_unknown_route_is_404(servers: ServerPair) -> None:
    response = servers.same("GET", "/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_wrong_method_is_405_with_allow(servers: ServerPair) -> None:
    response = servers.same("POST", "/sync")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_head_on_a_get_route(servers: ServerPair) -> None:
    get = servers.same("GET", "/items/5")
    head = servers.same("HEAD", "/items/5")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


def test_redirect_response(servers: ServerPair) -> None:
    response = servers.same("GET", "/go-home", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/items"


def test_trailing_slash_redirect(servers: ServerPair) -> None:
    # The Location is absolute and built from the Host header: the same Host for both servers.
    response = servers.same("GET", "/items/", headers={"host": "shop.example"}, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "http://shop.example/items"


def test_no_content(servers: ServerPair) -> None:
    response = servers.same("GET", "/no-content")
    assert response.status_code == 204
    assert response.content == b""
    assert "transfer-encoding" not in response.headers


# ---- dependencies, background tasks --------------------------------------------------------


def test_dependencies(servers: ServerPair) -> None:
    response = servers.same("GET", "/deps", params={"skip": "20"}, headers={"x-token": "secret"})
    assert response.json() == {"page": {"skip": 20, "limit": 10}, "token": "secret"}


def test_dependency_raising_401(servers: ServerPair) -> None:
    response = servers.same("GET", "/deps", headers={"x-token": "wrong"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_background_tasks_run_after_the_response(servers: ServerPair) -> None:
    entry = uuid.uuid4().hex
    response = servers.same("POST", "/background", params={"entry": entry})
    assert response.json() == {"scheduled": entry}
    for server, client in (
        (servers.uvicorn_server, servers.uvicorn),
        (servers.dbridge_server, servers.dbridge),
    ):
        entries = poll_json(
            client,
            "/background",
            lambda log: entry in log and f"sync:{entry}" in log,
            f"{server.label}: the background tasks for {entry}",
            server=server,
        )
        # The async task runs first, then the sync one (in the threadpool).
        assert entries.index(entry) < entries.index(f"sync:{entry}")


# ---- lifespan state, threads, concurrency --------------------------------------------------


def test_lifespan_state_reaches_request_state(servers: ServerPair) -> None:
    response = servers.same("GET", "/state")
    assert response.json() == {
        "started_at_is_float": True,
        "started_at_in_the_past": True,
        "lifespan_marker": "set-by-lifespan",
    }


def test_sync_endpoint_runs_in_the_threadpool(servers: ServerPair) -> None:
    response = servers.same("GET", "/sync")
    assert response.json() == {"in_worker_thread": True}


def test_sleeping_endpoints_run_concurrently(servers: ServerPair) -> None:
    count, seconds = 20, 0.5

    async def many(url: str) -> tuple[list[httpx.Response], float]:
        async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as client:
            start = time.monotonic()
            responses = await asyncio.gather(
                *(client.get("/sleep", params={"seconds": str(seconds)}) for _ in range(count))
            )
            return list(responses), time.monotonic() - start

    for server in (servers.uvicorn_server, servers.dbridge_server):
        responses, elapsed = asyncio.run(many(server.url))
        assert [r.status_code for r in responses] == [200] * count, server.label
        assert all(r.json() == {"slept": seconds} for r in responses), server.label
        # One after the other would take count * seconds = 10 s.
        assert elapsed < count * seconds / 2, f"{server.label}: {count} sleeps took {elapsed:.1f} s"


# ---- server-sent events and disconnects ----------------------------------------------------


def read_first_event(server: ServerProcess, endpoint: str, stream_id: str) -> bytes:
    """Opens the event stream on a raw socket, reads the head and one whole event, and closes the socket."""
    sock = server.connect()
    try:
        sock.sendall(
            f"GET {endpoint}?stream_id={stream_id} HTTP/1.1\r\nHost: test\r\n"
            f"Accept: text/event-stream\r\n\r\n".encode()
        )
        received = b""
        while b"\n\n" not in received.partition(b"\r\n\r\n")[2]:
            data = sock.recv(4096)
            assert data, f"{server.label} closed the event stream before the first event: {received!r}"
            received += data
        return received
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.mark.parametrize("endpoint", ["/sse/polling", "/sse/endless"])
def test_sse_endpoint_notices_client_disconnect(servers: ServerPair, endpoint: str) -> None:
    for server, client in (
        (servers.uvicorn_server, servers.uvicorn),
        (servers.dbridge_server, servers.dbridge),
    ):
        stream_id = uuid.uuid4().hex
        received = read_first_event(server, endpoint, stream_id)
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), f"{server.label}: {head!r}"
        assert b"content-type: text/event-stream" in head.lower(), f"{server.label}: {head!r}"
        assert b"transfer-encoding: chunked" in head.lower(), f"{server.label}: {head!r}"
        assert b"event: tick\ndata: 0\n\n" in body, f"{server.label}: {body!r}"
        seen = poll_json(
            client,
            f"/sse/status?stream_id={stream_id}",
            lambda status: status["noticed_disconnect"],
            f"{server.label}: the SSE generator noticing that the client of stream {stream_id} left",
            server=server,
        )
        assert seen == {"started": True, "noticed_disconnect": True}
