"""WebSockets end to end: the `websockets` client (and raw sockets for protocol errors)
against tests/apps/ws_app.py (a raw ASGI app) and the FastAPI endpoints in fastapi_app.py.

Where the behaviour is observable the same test runs against uvicorn too (its default
websockets-sansio protocol) and both must give the same result; where we differ on
purpose the test says so and checks only ours.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
from collections.abc import Iterator

import pytest
from asgi_servers import IO_BACKENDS, STOP_TIMEOUT, ServerProcess, serve, start_server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

APP = "ws_app:app"
FASTAPI_APP = "fastapi_app:app"
IO = ["uring", "epoll"]
SHARED_SERVERS = ["uvicorn", *IO_BACKENDS]  # IO_BACKENDS adds "ring": asyncio on the io_uring ring
TIMEOUT = 20.0  # no test may hang: every wait is bounded by this


def ws_url(server: ServerProcess, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


# ---- servers -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=SHARED_SERVERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The raw app on uvicorn and on dbridge-asgi with each backend: the shared behaviour."""
    kind = "uvicorn" if request.param == "uvicorn" else "dbridge-asgi"
    io = None if kind == "uvicorn" else request.param
    yield from serve(kind, APP, tmp_path_factory.mktemp(f"ws-{request.param}"), io=io)


@pytest.fixture(scope="module", params=IO)
def ours(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The raw app on dbridge-asgi, short keepalive timers and a 1 MB message limit."""
    yield from serve(
        "dbridge-asgi",
        APP,
        tmp_path_factory.mktemp(f"ws-short-{request.param}"),
        io=request.param,
        args=["--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5", "--ws-max-size", "1048576"],
    )


@pytest.fixture(scope="module", params=["uvicorn", *IO])
def fastapi_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    kind = "uvicorn" if request.param == "uvicorn" else "dbridge-asgi"
    io = None if kind == "uvicorn" else request.param
    yield from serve(
        kind,
        FASTAPI_APP,
        tmp_path_factory.mktemp(f"ws-fastapi-{request.param}"),
        io=io,
        env={"ASGI_TEST_FILES_DIR": str(tmp_path_factory.mktemp("files"))},
    )


# ---- echo, fragmentation, ping -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 1 << 20])
def test_echo_text_and_binary(server: ServerProcess, size: int) -> None:
    async def go():
        async with connect(ws_url(server, "/echo"), max_size=None) as ws:
            text = "é" * (size // 2) + "a" * (size % 2)
            await ws.send(text)
            assert await ws.recv() == text
            data = os.urandom(size)
            await ws.send(data)
            assert await ws.recv() == data

    run(go())


@pytest.mark.parametrize("compression", ["deflate", None])
def test_near_sixteen_megabyte_message_round_trip(server: ServerProcess, compression: str | None) -> None:
    async def go():
        async with connect(ws_url(server, "/echo"), max_size=None, compression=compression) as ws:
            # Just under the default --ws-max-size (16 MiB) once compressed: incompressible
            # data grows a little under deflate, and both servers cap the wire size too.
            data = os.urandom(1 << 16) * 250
            await ws.send(data)
            assert await ws.recv() == data

    run(go())


def test_message_fragmented_by_the_client_arrives_whole(server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(server, "/echo")) as ws:
            await ws.send(["frag", "mented ", "text"])
            assert await ws.recv() == "fragmented text"
            await ws.send([b"\x00", b"\x01" * 70000, b"\x02"])
            assert await ws.recv() == b"\x00" + b"\x01" * 70000 + b"\x02"

    run(go())


def test_client_ping_is_answered(server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(server, "/echo")) as ws:
            latency = await asyncio.wait_for(await ws.ping(b"are you there"), TIMEOUT)
            assert latency >= 0

    run(go())


def test_messages_sent_while_the_app_is_busy_are_all_delivered(server: ServerProcess) -> None:
    """More messages than --ws-max-queue (32) arrive while the app sleeps: reading stops and
    resumes as the app catches up, and nothing is lost or reordered."""

    async def go():
        async with connect(ws_url(server, "/queue?sleep=0.3")) as ws:
            await ws.send("go")
            for i in range(100):
                await ws.send(f"m{i}")
            await ws.send("end")
            return await ws.recv()

    assert run(go()) == ",".join(f"m{i}" for i in range(100))


def test_message_survives_a_receive_cancelled_after_it_was_handed_over(server: ServerProcess) -> None:
    # An app that times out its receive() (asyncio.wait_for) can be cancelled after the
    # server handed it a message but before it ran: the next receive() must still get it.
    async def go():
        async with connect(ws_url(server, "/cancelled-receive")) as ws:
            for i in range(20):
                await ws.send(str(i))
                try:
                    answer = await asyncio.wait_for(ws.recv(), TIMEOUT / 4)
                except asyncio.TimeoutError:
                    pytest.fail(f"message {i} was lost: the app never answered it")
                assert answer == f"got {i}"
            await ws.send("end")
            return json.loads(await ws.recv())

    report = run(go())
    assert report["got"] == [str(i) for i in range(20)]
    # Without this the test proves nothing: the race must have been hit.
    assert report["cancelled"] > 0, "no receive() was cancelled between its wake-up and its resumption"


def test_many_concurrent_websockets(server: ServerProcess) -> None:
    # 1000 open at once on ours; uvicorn is compared at 200 (the check is the same).
    count = 200 if server.kind == "uvicorn" else 1000

    async def one(i: int, opened: asyncio.Event, all_open: list[int]) -> str:
        async with connect(ws_url(server, "/echo"), open_timeout=TIMEOUT) as ws:
            all_open[0] += 1
            if all_open[0] == count:
                opened.set()
            await opened.wait()  # every socket is open before any closes
            await ws.send(f"socket {i}")
            return await ws.recv()

    async def go():
        opened, all_open = asyncio.Event(), [0]
        return await asyncio.gather(*(one(i, opened, all_open) for i in range(count)))

    assert run(go()) == [f"socket {i}" for i in range(count)]


# ---- handshake: scope, subprotocols, extensions, refusals ----------------------------------


def test_scope_matches_uvicorn(server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(server, "/scope?x=1%202")) as ws:
            return json.loads(await ws.recv())

    scope = run(go())
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", server.port]
    del scope["client"], scope["server"]
    assert scope == {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "root_path": "",
        "path": "/scope",
        "raw_path": "/scope",
        "query_string": "x=1%202",
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }


def test_forwarded_https_from_a_trusted_proxy_makes_the_scheme_wss(server: ServerProcess) -> None:
    async def go():
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
        async with connect(ws_url(server, "/scope"), additional_headers=headers) as ws:
            return json.loads(await ws.recv())

    scope = run(go())
    assert scope["scheme"] == "wss"
    assert scope["client"][0] == "203.0.113.7"


def test_subprotocol_chosen_by_the_app(server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(server, "/subprotocol"), subprotocols=["chat", "superchat"]) as ws:
            return ws.subprotocol, await ws.recv()

    assert run(go()) == ("superchat", "chat,superchat")


def test_accept_headers_and_deflate_are_answered(server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(server, "/echo")) as ws:
            return ws.response.headers

    headers = run(go())
    assert headers["x-app"] == "ws"
    # uvicorn's permessage-deflate parameters, which we follow.
    assert headers["sec-websocket-extensions"] == (
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    )


def test_handshake_outcomes_are_logged_like_uvicorn(server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(server, "/echo?logged=%C3%A9")):
            pass
        with pytest.raises(InvalidStatus):
            async with connect(ws_url(server, "/deny?logged=1")):
                pass

    run(go())
    server.wait_for_output('"WebSocket /echo?logged=%C3%A9" [accepted]')
    server.wait_for_output('"WebSocket /deny?logged=1" 403')


def test_close_before_accept_is_a_403(server: ServerProcess) -> None:
    async def go():
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server, "/deny")):
                pass
        return info.value.response

    response = run(go())
    assert response.status_code == 403


def test_denial_response_extension(server: ServerProcess) -> None:
    async def go():
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server, "/denial")):
                pass
        return info.value.response

    response = run(go())
    assert response.status_code == 418
    assert response.headers["x-denied"] == "yes"
    assert bytes(response.body) == b"no tea"


@pytest.mark.parametrize("path", ["/reject-raise", "/bad-accept"])
def test_exception_before_accept_is_a_500(server: ServerProcess, path: str) -> None:
    if path == "/bad-accept" and server.kind == "uvicorn":
        pytest.skip("uvicorn writes a subprotocol that is not a token into the 101 unchecked; we refuse it")
    async def go():
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server, path)):
                pass
        return info.value.response

    response = run(go())
    assert response.status_code == 500
    assert bytes(response.body) == b"Internal Server Error"
    if path == "/reject-raise":
        server.wait_for_output("refused by raising")


def test_bad_handshake_is_answered_as_http(server: ServerProcess) -> None:
    """An unknown version: we answer 426 naming ours, as RFC 6455 §4.4 asks; uvicorn answers 400."""
    sock = server.connect()
    try:
        sock.sendall(
            b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        )
        head = sock.recv(65536).decode("latin-1")
    finally:
        sock.close()
    if server.kind == "uvicorn":
        assert head.startswith("HTTP/1.1 400 "), head
        return
    assert head.startswith("HTTP/1.1 426 "), head
    assert "sec-websocket-version: 13" in head.lower()


# ---- closing -------------------------------------------------------------------------------


def test_server_close_with_code_and_reason(server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(server, "/close?code=4001&reason=bye")) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd.code, info.value.rcvd.reason

    assert run(go()) == (4001, "bye")


def test_messages_sent_before_close_arrive_and_sends_after_it_are_refused(server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(server, "/server-close")) as ws:
            first = await ws.recv()
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return first, info.value.rcvd.code

    assert run(go()) == ("bye", 1000)


@pytest.mark.parametrize("path", ["/raise", "/return"])
def test_app_ending_after_accept_drops_the_connection(server: ServerProcess, path: str) -> None:
    """uvicorn closes the transport without a close frame: the client sees 1006."""

    async def go():
        async with connect(ws_url(server, path)) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd, ws.protocol.close_code

    rcvd, code = run(go())
    assert rcvd is None
    assert code == 1006


def events_log(server: ServerProcess) -> list:
    async def go():
        async with connect(ws_url(server, "/events-log")) as ws:
            return json.loads(await ws.recv())

    return run(go())


def wait_for_events(server: ServerProcess, count: int) -> list:
    """The /events record once it has `count` entries (bounded)."""

    async def poll():
        while True:
            async with connect(ws_url(server, "/events-log")) as ws:
                log = json.loads(await ws.recv())
            if len(log) >= count:
                return log
            await asyncio.sleep(0.05)

    return run(poll())


def test_client_close_reaches_the_app_and_later_sends_raise_client_disconnected(
    server: ServerProcess,
) -> None:
    before = len(events_log(server))

    async def go():
        async with connect(ws_url(server, "/events")) as ws:
            await ws.close(code=4002, reason="client leaves")

    run(go())
    log = wait_for_events(server, before + 2)
    assert log[before] == {"type": "websocket.disconnect", "code": 4002, "reason": "client leaves"}
    # uvicorn's ClientDisconnected is an OSError: apps catch it as one.
    assert log[before + 1] == "send failed: ClientDisconnected"


def test_client_killed_abruptly_reaches_the_app(server: ServerProcess) -> None:
    """No close frame, just the TCP close: the app still gets websocket.disconnect."""
    before = len(events_log(server))
    sock = server.connect()
    sock.sendall(
        b"GET /events HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert sock.recv(65536).startswith(b"HTTP/1.1 101 ")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    sock.close()
    log = wait_for_events(server, before + 2)
    assert log[before]["type"] == "websocket.disconnect"
    # uvicorn reports 1005 for a lost connection; we report 1006, the code RFC 6455
    # §7.1.5 gives a connection that closed without a close frame.
    assert log[before]["code"] == (1005 if server.kind == "uvicorn" else 1006)
    assert log[before + 1] == "send failed: ClientDisconnected"


# ---- raw protocol errors and the keepalive (ours only: exact bytes on the wire) -----------


def client_frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = b"\x01\x02\x03\x04"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawClient:
    def __init__(self, server: ServerProcess, path: str = "/echo") -> None:
        self.sock = server.connect()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.pending = b""
        while b"\r\n\r\n" not in self.pending:
            self.fill()
        head, self.pending = self.pending.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 "), head

    def fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.pending += data

    def need(self, n: int) -> None:
        while len(self.pending) < n:
            self.fill()

    def frame(self) -> tuple[int, bytes]:
        self.need(2)
        opcode, length = self.pending[0] & 0x0F, self.pending[1] & 0x7F
        offset = 2
        if length == 126:
            self.need(4)
            (length,) = struct.unpack("!H", self.pending[2:4])
            offset = 4
        elif length == 127:
            self.need(10)
            (length,) = struct.unpack("!Q", self.pending[2:10])
            offset = 10
        self.need(offset + length)
        payload = self.pending[offset : offset + length]
        self.pending = self.pending[offset + length :]
        return opcode, payload

    def closed_by_server(self) -> bool:
        try:
            self.fill()
        except EOFError:
            return True
        except ConnectionResetError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


PROTOCOL_ERRORS = {
    "unmasked_client_frame_1002": (client_frame(0x1, b"x", masked=False), 1002),
    "reserved_opcode_1002": (client_frame(0x3, b"x"), 1002),
    "reserved_bits_1002": (client_frame(0x1, b"x", rsv=2), 1002),
    "control_frame_over_125_bytes_1002": (client_frame(0x9, b"p" * 126), 1002),
    "fragmented_control_frame_1002": (client_frame(0x9, b"p", fin=False), 1002),
    "invalid_utf8_1007": (client_frame(0x1, b"\xc3\x28"), 1007),
    "invalid_close_code_1002": (client_frame(0x8, struct.pack("!H", 999)), 1002),
    "message_over_ws_max_size_1009": (client_frame(0x2, b"b" * (1048576 + 1)), 1009),
}


@pytest.mark.parametrize("case", sorted(PROTOCOL_ERRORS))
def test_protocol_error_closes_with_its_code(ours: ServerProcess, case: str) -> None:
    data, code = PROTOCOL_ERRORS[case]
    client = RawClient(ours)
    try:
        client.sock.sendall(data)
        while True:
            opcode, payload = client.frame()
            if opcode != 0x9:  # a keepalive ping may come first
                break
        assert opcode == 0x8
        assert struct.unpack("!H", payload[:2])[0] == code
        assert client.closed_by_server()
    finally:
        client.close()


def test_unanswered_keepalive_ping_closes_with_1011(ours: ServerProcess) -> None:
    before = len(events_log(ours))
    client = RawClient(ours, "/events")
    try:
        opcode, _ = client.frame()
        assert opcode == 0x9
        opcode, payload = client.frame()  # we never answer
        assert opcode == 0x8
        assert struct.unpack("!H", payload[:2])[0] == 1011
        assert client.closed_by_server()
    finally:
        client.close()
    log = wait_for_events(ours, before + 2)
    assert log[before]["type"] == "websocket.disconnect"
    assert log[before]["code"] == 1011


def test_pongs_that_do_not_echo_the_ping_do_not_keep_the_websocket_open(ours: ServerProcess) -> None:
    # RFC 6455 §5.5.3: only a pong with the ping's application data answers it; an
    # unsolicited pong, or one with other data, leaves the ping unanswered (→ 1011).
    before = len(events_log(ours))
    client = RawClient(ours, "/events")
    try:
        opcode, payload = client.frame()
        assert opcode == 0x9
        client.sock.sendall(client_frame(0xA, b"unsolicited") + client_frame(0xA, payload + b"x"))
        opcode, payload = client.frame()
        assert opcode == 0x8, f"expected the 1011 close, got opcode {opcode:#x}"
        assert struct.unpack("!H", payload[:2])[0] == 1011
        assert client.closed_by_server()
    finally:
        client.close()
    log = wait_for_events(ours, before + 2)
    assert log[before]["code"] == 1011


def test_answered_keepalive_pings_keep_the_websocket_open(ours: ServerProcess) -> None:
    client = RawClient(ours)
    try:
        for _ in range(3):
            opcode, payload = client.frame()
            assert opcode == 0x9
            client.sock.sendall(client_frame(0xA, payload))
        client.sock.sendall(client_frame(0x1, b"still here"))
        opcode, payload = client.frame()
        while opcode == 0x9:
            client.sock.sendall(client_frame(0xA, payload))
            opcode, payload = client.frame()
        assert (opcode, payload) == (0x1, b"still here")
    finally:
        client.close()


# ---- options -------------------------------------------------------------------------------


@pytest.mark.parametrize("io", IO)
def test_deflate_off_is_not_negotiated(io: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    async def go(server):
        async with connect(ws_url(server, "/echo")) as ws:
            await ws.send("plain")
            return ws.response.headers.get("sec-websocket-extensions"), await ws.recv()

    for process in serve(
        "dbridge-asgi",
        APP,
        tmp_path_factory.mktemp("ws-nodeflate"),
        io=io,
        args=["--ws-per-message-deflate", "false"],
    ):
        assert run(go(process)) == (None, "plain")


@pytest.mark.parametrize("how", ["option", "environment"])
def test_ws_none_serves_the_upgrade_request_as_http(
    how: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """--ws none (or UVICORN_WS=none, as for every option): the app gets a plain HTTP request."""
    args, env = (["--ws", "none"], None) if how == "option" else ([], {"UVICORN_WS": "none"})
    directory = tmp_path_factory.mktemp("ws-none")
    for process in serve("dbridge-asgi", APP, directory, io="epoll", args=args, env=env):
        sock = process.connect()
        try:
            sock.sendall(
                b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            response = sock.recv(65536)
        finally:
            sock.close()
        assert response.startswith(b"HTTP/1.1 200 "), response
        assert response.endswith(b"http /echo")


@pytest.mark.parametrize("io", IO)
def test_graceful_shutdown_closes_open_websockets_with_1012(
    io: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    process = start_server("dbridge-asgi", APP, tmp_path_factory.mktemp("ws-shutdown"), io=io)
    try:

        async def go():
            async with connect(ws_url(process, "/echo")) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
                process.process.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                return info.value.rcvd.code

        assert run(go()) == 1012
        assert process.process.wait(timeout=STOP_TIMEOUT) == 0
    finally:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


# ---- FastAPI -------------------------------------------------------------------------------


def test_fastapi_websocket_echo_and_close(fastapi_server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(fastapi_server, "/ws/echo"), subprotocols=["v1"], max_size=None) as ws:
            assert ws.subprotocol == "v1"
            await ws.send("hello")
            assert await ws.recv() == "hello"
            data = os.urandom(3 << 20)
            await ws.send(data)
            assert await ws.recv() == data
            await ws.send("close")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd.code, info.value.rcvd.reason

    assert run(go()) == (4000, "asked to")


def test_fastapi_websocket_json(fastapi_server: ServerProcess) -> None:
    async def go():
        async with connect(ws_url(fastapi_server, "/ws/json")) as ws:
            await ws.send(json.dumps({"a": [1, 2]}))
            return json.loads(await ws.recv())

    assert run(go()) == {"got": {"a": [1, 2]}, "path": "/ws/json"}
