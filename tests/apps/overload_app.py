"""A raw ASGI app for the overload and slow-peer tests (tests/python/test_overload.py).

GET  /                  a small 200
GET  /stream?mb=N       N MiB streamed in 64 KiB chunks (slow-read clients)
GET  /stream-until-gone?id=X
                        streams 64 KiB chunks until the server says the client is gone
                        (http.disconnect); /outcome?id=X then answers "disconnected"
GET  /outcome?id=X      what /stream-until-gone?id=X saw so far: "streaming", "disconnected"
GET  /hold              in progress until the client goes away (holds a concurrency slot)
POST /upload            reads the whole body, answers its length
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

from app_support import run_lifespan

CHUNK = b"x" * (64 * 1024)

outcomes: dict[str, str] = {}


async def respond(send: Any, body: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def stream(send: Any, mebibytes: int) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for _ in range(mebibytes * 16):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def stream_until_gone(receive: Any, send: Any, key: str) -> None:
    outcomes[key] = "streaming"

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        outcomes[key] = "disconnected"

    watcher = asyncio.ensure_future(watch())
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    # Sends after the disconnect return at once (dropped, as uvicorn does), so the loop ends.
    while outcomes[key] == "streaming":
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await watcher


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/":
        await respond(send, b"ok")
    elif path == "/stream":
        await stream(send, int(query.get("mb", "1")))
    elif path == "/stream-until-gone":
        await stream_until_gone(receive, send, query["id"])
    elif path == "/outcome":
        await respond(send, outcomes.get(query["id"], "unknown").encode())
    elif path == "/hold":
        while (await receive())["type"] != "http.disconnect":
            pass
    elif path == "/upload":
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await respond(send, str(size).encode())
    else:
        await respond(send, b"not found", status=404)
