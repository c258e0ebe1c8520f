"""Byte-level HTTP/1.1 client pieces for tests that must see exactly what is on the wire.

httpx and curl normalise what they send and forgive what they get; these helpers do
neither. `ResponseReader` frames responses from a socket the way RFC 9112 §6.3 says a
client must, so a response with a body that should not be there (HEAD), or one answered
out of order, shows up as a misframed stream.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass

# (name, value)
Header = tuple[str, str]


def build_request(
    method: str = "GET",
    target: str = "/",
    headers: Sequence[Header] = (("Host", "test"),),
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{method} {target} {version}"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body: bytes, chunk_size: int) -> bytes:
    """`body` in the chunked coding (RFC 9112 §7.1), ending with the last-chunk and no trailers."""
    out = bytearray()
    for start in range(0, len(body), chunk_size):
        piece = body[start : start + chunk_size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[Header]  # names lower-cased, in the order received
    body: bytes
    raw_head: bytes  # status line and fields, up to and including the empty line

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name.lower()]

    def header(self, name: str) -> str | None:
        """The value of a field that must appear at most once."""
        found = self.values(name)
        assert len(found) <= 1, f"field {name!r} appears {len(found)} times: {found}"
        return found[0] if found else None


class ServerClosed(Exception):
    pass


class ResponseReader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ServerClosed(f"server closed the connection; unparsed bytes: {self.buffer[:200]!r}")
        self.buffer += data

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _take_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def read_response(self, head_request: bool = False) -> Response:
        """One response, interim (1xx) responses included as responses of their own."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        raw_head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        version, status, reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", f"status line {lines[0]!r}: expected HTTP/1.1"
        headers: list[Header] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep and name == name.strip() and name, f"malformed response field line {line!r}"
            headers.append((name.lower(), value.strip()))
        response = Response(version, int(status), reason, headers, b"", raw_head + b"\r\n\r\n")
        response.body = self._read_body(response, head_request)
        return response

    def _read_body(self, response: Response, head_request: bool) -> bytes:
        # RFC 9112 §6.3: no body for HEAD, 1xx, 204, 304, whatever the fields say.
        if head_request or response.status < 200 or response.status in (204, 304):
            return b""
        length = response.header("content-length")
        if length is not None:
            return self._take(int(length))
        if (response.header("transfer-encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._take_line().split(b";")[0], 16)
                if size == 0:
                    while self._take_line() != b"":
                        pass
                    return body
                body += self._take(size)
                assert self._take(2) == b"\r\n", "chunk data not followed by CRLF"
        body = self.buffer  # close-delimited
        self.buffer = b""
        while True:
            data = self.sock.recv(1 << 16)
            if not data:
                return body
            body += data

    def read_final_response(self, head_request: bool = False) -> tuple[list[Response], Response]:
        """Interim responses, then the final one."""
        interim = []
        while True:
            r = self.read_response(head_request)
            if r.status >= 200:
                return interim, r
            interim.append(r)

    def closed_by_server(self) -> bool:
        """True if the server closed the connection cleanly (FIN) with nothing more to read.

        Unread bytes or a reset count as not closed cleanly; a connection still open
        after the socket timeout raises socket.timeout.
        """
        if self.buffer:
            return False
        try:
            return self.sock.recv(1 << 16) == b""
        except ConnectionResetError:
            return False


def exchange(sock: socket.socket, request: bytes, head_request: bool = False) -> Response:
    """Send one request and read its final response."""
    sock.sendall(request)
    return ResponseReader(sock).read_final_response(head_request)[1]
