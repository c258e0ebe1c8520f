"""A raw ASGI app for the Gunicorn worker tests (`--chdir tests/apps gunicorn_app:app`).

    /pid                 {"pid": the worker's PID}: which worker answered
    /loop                {"loop": the module of the running event loop's class}
    /sleep?seconds=S     awaits asyncio.sleep(S): slow, but the loop stays free
    /block?seconds=S     time.sleep(S) on the loop: the loop is wedged meanwhile
    /headers             the request's header count

/sleep and /block print "<route>-started pid=<pid>" to stdout before they wait, so a
test knows its request is in flight without guessing a delay.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

from app_support import run_lifespan


async def send_json(send: Any, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def announce(route: str) -> None:
    print(f"{route}-started pid={os.getpid()}", flush=True)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    query = parse_qs(scope["query_string"].decode("latin-1"))
    seconds = float(query.get("seconds", ["0"])[0])
    path = scope["path"]
    if path == "/pid":
        await send_json(send, {"pid": os.getpid()})
    elif path == "/loop":
        await send_json(send, {"loop": type(asyncio.get_running_loop()).__module__})
    elif path == "/sleep":
        announce("sleep")
        await asyncio.sleep(seconds)
        await send_json(send, {"slept": seconds, "pid": os.getpid()})
    elif path == "/block":
        announce("block")
        time.sleep(seconds)  # noqa: ASYNC251 - wedging the loop is the point
        await send_json(send, {"blocked": seconds, "pid": os.getpid()})
    elif path == "/headers":
        await send_json(send, {"count": len(scope["headers"])})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
