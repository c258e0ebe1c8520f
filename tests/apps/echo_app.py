"""A raw ASGI app that says which request it saw, for the HTTP/1.1 corpus (tests/corpus/http1.toml).

Served with `--app-dir tests/apps echo_app:app`. Every HTTP request, whatever its method
or target, is answered 200 with one line of text:

    <method> <path>[?<query>] HTTP/<http_version> <body length> <sha256 of the body, 16 hex digits>

after the whole body was read. So each request the server hands to the app shows up as
exactly one response, and a request smuggled inside another one's body would show up as
a response of its own (or as a body length and hash the corpus did not expect). A client
that goes away before the body is complete gets no response.
"""

from __future__ import annotations

import hashlib
from typing import Any

from app_support import run_lifespan


def echo_line(method: str, path: str, query: str, http_version: str, body: bytes) -> bytes:
    """The response body for a request; the corpus tests compute the expected one with it."""
    target = path + ("?" + query if query else "")
    digest = hashlib.sha256(body).hexdigest()[:16]
    return f"{method} {target} HTTP/{http_version} {len(body)} {digest}".encode("utf-8", "replace")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return  # a WebSocket handshake is refused (the server answers 403)
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    line = echo_line(
        scope["method"],
        scope["path"],
        scope["query_string"].decode("latin-1"),
        scope["http_version"],
        bytes(body),
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(line)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": line})
