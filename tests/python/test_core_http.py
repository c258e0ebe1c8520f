"""End-to-end behaviour of the core (reactor + HTTP/1.1 engine) over real sockets.

The server is the C-only responder: "Hello, world!" for every request once its body has
been read. Real clients (httpx, curl) show the core works with what people use; raw
sockets pin down the bytes for framing, persistence and rejection rules. Every test runs
against `--io uring` and `--io epoll` (see conftest.py).

Timeouts here are upper bounds that turn a hang into a failure, never assertions.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import struct
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from conftest import RunningResponder, finish_responder, start_responder
from raw_http import Response, ResponseReader, build_request, chunked

HELLO = b"Hello, world!"
INVALID_REQUEST_BODY = b"Invalid HTTP request received."
# RFC 9110 §5.6.7: the preferred date format.
IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} GMT$"
)
CLIENT_TIMEOUT = 30.0


def assert_server_fields(response: Response) -> None:
    assert response.header("server") == "dbridge-asgi", f"server field: {response.raw_head!r}"
    date = response.header("date")
    assert date is not None and IMF_FIXDATE.match(date), f"date field is not an IMF-fixdate: {date!r}"


def assert_hello(response: Response) -> None:
    assert response.status == 200, f"expected 200, got {response.raw_head!r} {response.body[:200]!r}"
    assert response.reason == "OK"
    assert response.body == HELLO
    assert response.header("content-type") == "text/plain"
    assert response.header("content-length") == "13"
    assert_server_fields(response)


def assert_serves_new_client(server: RunningResponder) -> None:
    with server.connect() as sock:
        sock.sendall(build_request(headers=[("Host", "test"), ("Connection", "close")]))
        reader = ResponseReader(sock)
        assert_hello(reader.read_response())
        assert reader.closed_by_server()


def get_request(*extra_headers) -> bytes:
    return build_request(headers=[("Host", "test"), *extra_headers])


def run_curl(*args: str) -> subprocess.CompletedProcess:
    curl = shutil.which("curl")
    assert curl, "curl is not installed (make apt-deps installs it)"
    result = subprocess.run(
        [curl, "-sS", "--max-time", "60", *args], capture_output=True, timeout=90, check=False
    )
    assert result.returncode == 0, f"curl {' '.join(args)} exited {result.returncode}: {result.stderr!r}"
    return result


def split_curl_output(output: bytes) -> list[bytes]:
    """`curl -i` output as [head, head, ..., body]: interim heads come first."""
    parts = []
    rest = output
    while rest.startswith(b"HTTP/"):
        head, _, rest = rest.partition(b"\r\n\r\n")
        parts.append(head)
    parts.append(rest)
    return parts


# ---- httpx ----------------------------------------------------------------------------


def test_httpx_get_is_answered_with_hello_date_and_server_fields(base_url):
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT) as client:
        r = client.get("/")
    assert r.status_code == 200
    assert r.http_version == "HTTP/1.1"
    assert r.content == HELLO
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["content-length"] == "13"
    assert r.headers["server"] == "dbridge-asgi"
    assert IMF_FIXDATE.match(r.headers["date"]), r.headers["date"]


def test_httpx_client_sends_200_requests_over_one_kept_alive_connection(base_url):
    # The local address of the socket each response came over: a server that closed
    # after a response would force a new connection (a new local port) for the next one.
    local_addresses = set()
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT) as client:
        for i in range(200):
            r = client.get(f"/item/{i}")
            assert r.status_code == 200 and r.content == HELLO, f"request {i}: {r.status_code} {r.content!r}"
            assert "close" not in r.headers.get("connection", ""), f"request {i} was answered with close"
            sock = r.extensions["network_stream"].get_extra_info("socket")
            local_addresses.add(sock.getsockname())
    assert len(local_addresses) == 1, f"200 requests used {len(local_addresses)} connections"


def test_httpx_post_with_content_length_body_is_answered(base_url):
    body = bytes(range(256)) * 4096  # 1 MiB
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT) as client:
        r = client.post("/upload", content=body)
        again = client.get("/")
    assert r.status_code == 200 and r.content == HELLO
    assert again.status_code == 200 and again.content == HELLO


def test_httpx_chunked_upload_of_20_mb_is_answered(base_url):
    piece = b"z" * 65536

    def body():
        for _ in range(320):  # 20 MiB
            yield piece

    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT) as client:
        request = client.build_request("POST", "/upload", content=body())
        assert request.headers["transfer-encoding"] == "chunked"
        r = client.send(request)
    assert r.status_code == 200 and r.content == HELLO


# ---- curl -----------------------------------------------------------------------------


def test_curl_shows_status_line_fields_and_body(base_url):
    head, body = split_curl_output(run_curl("-i", base_url + "/").stdout)
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    fields = {line.split(b":", 1)[0].lower(): line.split(b":", 1)[1].strip() for line in lines[1:]}
    assert fields[b"server"] == b"dbridge-asgi"
    assert fields[b"content-type"] == b"text/plain"
    assert fields[b"content-length"] == b"13"
    assert b"date" in fields
    assert body == HELLO


def test_curl_reuses_the_connection_for_a_second_http11_request(base_url):
    # num_connects: connections curl had to open for that transfer (0 = reused).
    out = run_curl(
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_connects}\\n",
        base_url + "/a",
        base_url + "/b",
    ).stdout
    assert out.decode().split("\n")[:2] == ["200 1", "200 0"], out


def test_curl_http10_gets_a_response_and_a_new_connection_per_request(base_url):
    out = run_curl(
        "--http1.0",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_connects}\\n",
        base_url + "/a",
        base_url + "/b",
    ).stdout
    assert out.decode().split("\n")[:2] == ["200 1", "200 1"], out
    head, body = split_curl_output(run_curl("--http1.0", "-i", base_url + "/").stdout)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == HELLO


def test_curl_expect_100_continue_upload_of_2_mb_gets_100_then_200(base_url, tmp_path: Path):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    # A long expect100-timeout: curl would otherwise send the body after 1 s without
    # the 100, and the test could pass against a server that never sends it.
    out = run_curl(
        "-i",
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "60",
        "--data-binary",
        f"@{upload}",
        base_url + "/upload",
    ).stdout
    parts = split_curl_output(out)
    assert len(parts) == 3, f"expected a 100 head, a 200 head and a body: {out[:500]!r}"
    assert parts[0] == b"HTTP/1.1 100 Continue"
    assert parts[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert parts[2] == HELLO


# ---- persistence and pipelining (raw sockets) -------------------------------------------


def test_keep_alive_answers_200_sequential_requests_on_one_connection(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    reader = ResponseReader(sock)
    for i in range(200):
        sock.sendall(build_request(target=f"/seq/{i}"))
        response = reader.read_response()
        assert_hello(response)
        assert response.header("connection") is None, f"request {i}: {response.raw_head!r}"
    sock.sendall(get_request(("Connection", "close")))
    assert_hello(reader.read_response())
    assert reader.closed_by_server()


def pipelined_request(i: int, last: bool) -> bytes:
    """Request i of a pipeline: GET, HEAD, POST with Content-Length, POST chunked in turn."""
    headers = [("Host", "test")] + ([("Connection", "close")] if last else [])
    kind = i % 4
    if kind == 0:
        return build_request("GET", f"/p/{i}", headers)
    if kind == 1:
        return build_request("HEAD", f"/p/{i}", headers)
    body = f"body of request {i}".encode()
    if kind == 2:
        return build_request("POST", f"/p/{i}", headers + [("Content-Length", str(len(body)))], body)
    return build_request("POST", f"/p/{i}", headers + [("Transfer-Encoding", "chunked")], chunked(body, 5))


def test_16_pipelined_requests_in_one_send_get_16_responses_in_order(responder, client_sockets):
    # A HEAD answer has no body, so answers out of order (or a HEAD answered with a body)
    # misframe the stream; the last request closes, so nothing may follow its response.
    sock = responder.connect()
    client_sockets.append(sock)
    sock.sendall(b"".join(pipelined_request(i, last=i == 15) for i in range(16)))
    reader = ResponseReader(sock)
    for i in range(16):
        is_head = i % 4 == 1
        response = reader.read_response(head_request=is_head)
        assert response.status == 200, f"response {i}: {response.raw_head!r}"
        assert_server_fields(response)
        assert response.header("content-length") == "13", f"response {i}: {response.raw_head!r}"
        if not is_head:
            assert response.body == HELLO, f"response {i}: {response.body!r}"
    assert response.header("connection") == "close"
    assert reader.closed_by_server(), f"bytes after the 16th response: {reader.buffer[:200]!r}"


def test_5000_pipelined_requests_past_the_input_high_water_mark_are_all_answered(responder, client_sockets):
    # ~170 KB of requests: more than the connection buffers before it stops reading, so
    # reading must pause and resume while responses drain. A sender thread, because the
    # server may stop reading until we read its responses.
    sock = responder.connect()
    client_sockets.append(sock)
    count = 5000
    data = b"".join(build_request(target=f"/deep/{i}") for i in range(count))
    data += get_request(("Connection", "close"))
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    reader = ResponseReader(sock)
    for i in range(count + 1):
        response = reader.read_response()
        assert response.status == 200 and response.body == HELLO, f"response {i}: {response.raw_head!r}"
    sender.join(timeout=CLIENT_TIMEOUT)
    assert not sender.is_alive()
    assert reader.closed_by_server()


def test_request_sent_one_byte_at_a_time_is_parsed(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = build_request(
        "POST",
        "/bytes",
        [("Host", "test"), ("Transfer-Encoding", "chunked")],
        chunked(b"split everywhere", 3),
    ) + get_request(("Connection", "close"))
    for i in range(len(request)):
        sock.sendall(request[i : i + 1])
    reader = ResponseReader(sock)
    assert_hello(reader.read_response())
    assert_hello(reader.read_response())
    assert reader.closed_by_server()


def test_head_response_has_fields_and_no_body(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    sock.sendall(build_request("HEAD", "/", [("Host", "test"), ("Connection", "close")]))
    received = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        received += data
    assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received
    assert received.endswith(b"\r\n\r\n"), f"HEAD got a body: {received!r}"
    assert received.count(b"\r\n\r\n") == 1, f"more than one response: {received!r}"
    # RFC 9110 §8.6: a Content-Length in a HEAD response is the GET body's length.
    assert b"\r\ncontent-length: 13\r\n" in received.lower() or b"content-length" not in received.lower()


def test_http10_request_is_answered_then_closed(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    reader = ResponseReader(sock)
    assert_hello(reader.read_response())
    assert reader.closed_by_server(), "an HTTP/1.0 request without keep-alive must not keep the connection"


def test_http10_keep_alive_keeps_the_connection_and_says_so(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    reader = ResponseReader(sock)
    for i in range(3):
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = reader.read_response()
        assert_hello(response)
        # RFC 9112 Appendix C.2.2: without it, an HTTP/1.0 client closes.
        assert response.header("connection") == "keep-alive", f"request {i}: {response.raw_head!r}"
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert_hello(reader.read_response())
    assert reader.closed_by_server()


def test_connection_close_is_answered_with_close_then_closed(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    # The second request must not be answered: the connection ends after the first.
    sock.sendall(get_request(("Connection", "close")) + get_request())
    reader = ResponseReader(sock)
    response = reader.read_response()
    assert_hello(response)
    assert response.header("connection") == "close"  # RFC 9112 §9.6
    assert reader.closed_by_server(), f"data after the close response: {reader.buffer[:200]!r}"


def test_request_body_with_content_length_is_consumed_before_the_next_request(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    reader = ResponseReader(sock)
    # The body looks like a request: a server that ignored Content-Length would answer twice.
    body = b"GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"
    sock.sendall(build_request("POST", "/", [("Host", "test"), ("Content-Length", str(len(body)))], body))
    assert_hello(reader.read_response())
    sock.sendall(get_request(("Connection", "close")))
    assert_hello(reader.read_response())
    assert reader.closed_by_server(), f"extra response: {reader.buffer[:200]!r}"


def test_expect_100_continue_gets_100_before_the_body_is_sent(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    reader = ResponseReader(sock)
    body = b"x" * 100_000
    sock.sendall(
        build_request(
            "POST", "/", [("Host", "test"), ("Content-Length", str(len(body))), ("Expect", "100-continue")]
        )
    )
    interim = reader.read_response()
    assert interim.status == 100 and interim.raw_head == b"HTTP/1.1 100 Continue\r\n\r\n", interim.raw_head
    sock.sendall(body)
    assert_hello(reader.read_response())


def test_raw_chunked_upload_of_20_mb_with_varied_chunk_sizes_keeps_the_connection(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    reader = ResponseReader(sock)
    sock.sendall(build_request("POST", "/upload", [("Host", "test"), ("Transfer-Encoding", "chunked")]))
    sizes = [1, 7, 4096, 65536, 100_000, 1 << 20]
    sent = 0
    total = 20 * (1 << 20)
    i = 0
    while sent < total:
        size = min(sizes[i % len(sizes)], total - sent)
        size_line = b"%X" % size if i % 2 else b"%x" % size  # hex digits in either case
        sock.sendall(size_line + b"\r\n" + b"c" * size + b"\r\n")
        sent += size
        i += 1
    sock.sendall(b"0\r\nx-trailer: done\r\n\r\n")
    assert_hello(reader.read_response())
    sock.sendall(get_request(("Connection", "close")))
    assert_hello(reader.read_response())
    assert reader.closed_by_server()


# ---- malformed input: the right status, then a close ------------------------------------

MANY_FIELDS = "".join(f"X-Field-{i}: {i}\r\n" for i in range(200))
BIG_FIELDS = "".join(f"X-Big-{i}: {'v' * 2000}\r\n" for i in range(20))  # ~40 KB

MALFORMED = [
    (
        "rejects_content_length_with_transfer_encoding",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "rejects_differing_duplicate_content_length",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    ),
    (
        "rejects_non_numeric_content_length",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello",
        400,
    ),
    (
        "rejects_non_hex_chunk_size",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "rejects_chunk_size_overflowing_64_bits",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1" + b"0" * 16 + b"\r\nhello\r\n",
        400,
    ),
    (
        "rejects_chunk_data_longer_than_its_size",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "rejects_repeated_chunked_coding",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "rejects_transfer_encoding_in_http10",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("rejects_obs_fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n", 400),
    ("rejects_whitespace_before_colon", b"GET / HTTP/1.1\r\nHost: t\r\nX-Space : a\r\n\r\n", 400),
    ("rejects_bare_lf_line_endings", b"GET / HTTP/1.1\nHost: t\n\n", 400),
    ("rejects_bare_lf_in_field_section", b"GET / HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n", 400),
    ("rejects_bare_cr_in_field_value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400),
    ("rejects_nul_in_field_value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400),
    ("rejects_control_byte_in_field_value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n", 400),
    ("rejects_http11_without_host", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    ("rejects_two_host_fields", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (
        "rejects_request_line_over_8192_bytes_with_414",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        414,
    ),
    (
        "rejects_more_than_100_fields_with_431",
        b"GET / HTTP/1.1\r\nHost: t\r\n" + MANY_FIELDS.encode() + b"\r\n",
        431,
    ),
    (
        "rejects_field_section_over_32_kib_with_431",
        b"GET / HTTP/1.1\r\nHost: t\r\n" + BIG_FIELDS.encode() + b"\r\n",
        431,
    ),
    # RFC 9112 §6.3 item 4: chunked must be the final coding, else the length is unknowable.
    (
        "rejects_final_coding_other_than_chunked_with_400",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        400,
    ),
    # RFC 9112 §6.1: a transfer coding the server does not implement gets 501.
    (
        "rejects_unknown_transfer_coding_before_chunked_with_501",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    ("rejects_http2_version_with_505", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ("rejects_unknown_expectation_with_417", b"GET / HTTP/1.1\r\nHost: t\r\nExpect: foo\r\n\r\n", 417),
]


@pytest.mark.parametrize("request_bytes,status", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_request_gets_error_status_then_close(responder, client_sockets, request_bytes, status):
    bystander = responder.connect()  # a kept-alive client that must not notice
    client_sockets.append(bystander)
    bystander_reader = ResponseReader(bystander)
    bystander.sendall(get_request())
    assert_hello(bystander_reader.read_response())

    sock = responder.connect()
    client_sockets.append(sock)
    sock.sendall(request_bytes)
    reader = ResponseReader(sock)
    response = reader.read_response()
    assert response.status == status, f"expected {status}, got {response.raw_head!r} {response.body!r}"
    assert_server_fields(response)
    assert response.header("connection") == "close", response.raw_head
    assert int(response.header("content-length")) == len(response.body)
    if status == 400:
        assert response.body == INVALID_REQUEST_BODY
    assert reader.closed_by_server(), "the connection must close after a rejected request"

    bystander.sendall(get_request())
    assert_hello(bystander_reader.read_response())
    assert_serves_new_client(responder)


def test_malformed_request_after_a_good_one_on_the_same_connection_is_rejected(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    sock.sendall(get_request() + b"GET / HTTP/1.1\r\nHost: t\r\nX-Space : a\r\n\r\n" + get_request())
    reader = ResponseReader(sock)
    assert_hello(reader.read_response())
    rejected = reader.read_response()
    assert rejected.status == 400 and rejected.body == INVALID_REQUEST_BODY
    assert reader.closed_by_server(), "the request after the bad one must not be answered"


# ---- many clients, rude clients -------------------------------------------------------


def test_200_concurrent_connections_each_get_their_response(responder):
    async def main() -> list[bytes]:
        # Open every connection first, so all 200 are open on the server at once.
        streams = await asyncio.gather(
            *[asyncio.open_connection(responder.host, responder.port) for _ in range(200)]
        )

        async def one(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
            writer.write(build_request(target=f"/c/{i}", headers=[("Host", "test"), ("Connection", "close")]))
            await writer.drain()
            data = await reader.read()  # until the server closes
            writer.close()
            return data

        return await asyncio.wait_for(
            asyncio.gather(*[one(i, r, w) for i, (r, w) in enumerate(streams)]), timeout=60
        )

    results = asyncio.run(main())
    assert len(results) == 200
    for i, data in enumerate(results):
        assert data.startswith(b"HTTP/1.1 200 OK\r\n"), f"connection {i}: {data[:200]!r}"
        assert data.endswith(b"\r\n\r\n" + HELLO), f"connection {i}: {data[-200:]!r}"


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


RESET_POINTS = [
    ("reset_mid_request_line", b"GET /some/pa"),
    ("reset_mid_head", b"GET / HTTP/1.1\r\nHost: te"),
    (
        "reset_mid_content_length_body",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"b" * 1000,
    ),
    (
        "reset_mid_chunked_body",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + b"c" * 100,
    ),
    (
        "reset_while_waiting_for_100_continue",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
    ),
    ("reset_with_unread_pipelined_responses", b"".join(build_request(target=f"/{i}") for i in range(64))),
]


@pytest.mark.parametrize("sent_before_reset", [c[1] for c in RESET_POINTS], ids=[c[0] for c in RESET_POINTS])
def test_client_reset_does_not_disturb_the_server(responder, client_sockets, sent_before_reset):
    bystander = responder.connect()
    client_sockets.append(bystander)
    bystander_reader = ResponseReader(bystander)
    bystander.sendall(get_request())
    assert_hello(bystander_reader.read_response())

    for _ in range(20):
        rude = responder.connect()
        rude.sendall(sent_before_reset)
        reset(rude)

    bystander.sendall(get_request())
    assert_hello(bystander_reader.read_response())
    assert_serves_new_client(responder)


def test_client_that_half_closes_after_its_request_still_gets_the_response(responder, client_sockets):
    sock = responder.connect()
    client_sockets.append(sock)
    sock.sendall(get_request())
    sock.shutdown(socket.SHUT_WR)
    reader = ResponseReader(sock)
    assert_hello(reader.read_response())
    assert reader.closed_by_server()


# ---- Unix-domain socket ----------------------------------------------------------------


def test_uds_serves_curl_unix_socket(uds_responder):
    output = run_curl("-i", "--unix-socket", uds_responder.uds, "http://localhost/").stdout
    head, body = split_curl_output(output)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nserver: dbridge-asgi" in head
    assert body == HELLO


def test_uds_keeps_alive_and_rejects_malformed_input(uds_responder, client_sockets):
    sock = uds_responder.connect()
    client_sockets.append(sock)
    reader = ResponseReader(sock)
    for _ in range(3):
        sock.sendall(get_request())
        assert_hello(reader.read_response())
    sock.sendall(b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n")  # no Host
    rejected = reader.read_response()
    assert rejected.status == 400 and rejected.body == INVALID_REQUEST_BODY
    assert reader.closed_by_server()
    assert_serves_new_client(uds_responder)


# ---- start-up ----------------------------------------------------------------------------


def using_line(server: RunningResponder) -> str:
    lines = [line for line in server.log().splitlines() if line.startswith("INFO: Using ")]
    assert len(lines) == 1, f"expected one 'INFO: Using' line in stderr:\n{server.log()}"
    return lines[0]


def test_forced_io_backend_is_logged(responder):
    line = using_line(responder)
    if responder.io == "uring":
        assert "io_uring" in line, line
    else:
        assert line.startswith("INFO: Using epoll"), line


def test_auto_io_backend_logs_its_choice(tmp_path):
    server = start_responder("auto", tmp_path)
    try:
        line = using_line(server)
        assert line.startswith(("INFO: Using io_uring", "INFO: Using epoll")), line
        assert_serves_new_client(server)
    finally:
        finish_responder(server)


def test_sigterm_stops_the_server_with_exit_code_0(responder):
    assert_serves_new_client(responder)
    finish_responder(responder)  # fails the test unless the exit code is 0
    with pytest.raises(OSError):
        responder.connect(timeout=5).close()
