"""A raw ASGI WebSocket app: one path per behaviour the WebSocket tests check.

/echo            accept, echo every message (text as text, bytes as bytes) until disconnect
/subprotocol     accept with the last subprotocol the client offered
/close           accept, then close with the code and reason given in the query (code=4001&reason=bye)
/server-close    accept, send "bye", close with 1000
/deny            close before accept (uvicorn answers 403)
/denial          websocket.http.response start/body before accept (418 with a body)
/reject-raise    raise before accept (500)
/bad-accept      accept with a subprotocol that is not a token (send raises: 500)
/raise           accept, then raise (the connection is dropped)
/return          accept, then return without closing
/scope           accept, send the scope (JSON) and close
/events          accept, then report how the connection ended: the disconnect message
                 (or "send failed: <exception type>") is kept and served at /events-log
/events-log      accept, send what /events recorded (JSON list), close
/queue           accept, wait for "go", sleep, then receive until "end" and answer with all it got
/cancelled-receive  accept; each receive() runs in its own task, which is cancelled whenever
                 its wait is over (the future it awaits is done) but it has not resumed yet;
                 every text received is answered "got <text>"; "end" is answered with a
                 JSON report {"got": [...], "cancelled": <count of such cancellations>}
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

from app_support import run_lifespan

_events: list = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    if scope["type"] == "http":
        body = f"http {scope['path']}".encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    assert scope["type"] == "websocket"
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    connect = await receive()
    assert connect["type"] == "websocket.connect", connect

    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/denial":
        await send(
            {"type": "websocket.http.response.start", "status": 418, "headers": [(b"x-denied", b"yes")]}
        )
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"tea"})
        return
    if path == "/reject-raise":
        raise RuntimeError("refused by raising")
    if path == "/bad-accept":
        # Not a token: the server refuses to put it in the 101 (RFC 6455 §4.2.2), send() raises.
        await send({"type": "websocket.accept", "subprotocol": "two words"})

    if path == "/subprotocol":
        offered = scope["subprotocols"]
        await send({"type": "websocket.accept", "subprotocol": offered[-1] if offered else None})
        await send({"type": "websocket.send", "text": ",".join(offered)})
        await receive()
        return
    await send({"type": "websocket.accept", "headers": [(b"x-app", b"ws")]})

    if path == "/echo":
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    elif path == "/close":
        code, reason = int(query.get("code", 1000)), query.get("reason", "")
        await send({"type": "websocket.close", "code": code, "reason": reason})
        message = await receive()
        assert message["type"] == "websocket.disconnect"
    elif path == "/server-close":
        await send({"type": "websocket.send", "text": "bye"})
        await send({"type": "websocket.close", "code": 1000})
        try:
            await send({"type": "websocket.send", "text": "after close"})
        except RuntimeError:
            pass
    elif path == "/raise":
        raise RuntimeError("boom after accept")
    elif path == "/return":
        return
    elif path == "/scope":
        shown = {k: v for k, v in scope.items() if k not in ("state", "headers")}
        def plain(value):
            return value.decode() if isinstance(value, bytes) else str(value)

        shown = json.loads(json.dumps(shown, default=plain))
        await send({"type": "websocket.send", "text": json.dumps(shown)})
        await send({"type": "websocket.close"})
    elif path == "/events":
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                _events.append(message)
                try:
                    await send({"type": "websocket.send", "text": "too late"})
                except OSError as exc:
                    _events.append(f"send failed: {type(exc).__name__}")
                except RuntimeError as exc:
                    _events.append(f"send refused: {type(exc).__name__}")
                return
    elif path == "/events-log":
        await asyncio.sleep(0)
        await send({"type": "websocket.send", "text": json.dumps(_events)})
        await send({"type": "websocket.close"})
    elif path == "/cancelled-receive":
        await cancelled_receives(receive, send)
    elif path == "/queue":
        message = await receive()
        assert message.get("text") == "go"
        await asyncio.sleep(float(query.get("sleep", "0.5")))
        received = []
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "end":
                await send({"type": "websocket.send", "text": ",".join(received)})
            else:
                received.append(message["text"])


async def cancelled_receives(receive, send) -> None:
    # The race a timeout around receive() can lose: the message is handed over (the
    # task's future completes) and the task is cancelled before it runs again. The
    # cancellation goes in between on purpose, each time: the wake-up is queued behind
    # this task's own step, so this task sees the future done and the receiver not yet resumed.
    got: list[str] = []
    cancelled = 0

    async def one_receive():
        return await receive()

    while True:
        receiver = asyncio.ensure_future(one_receive())
        await asyncio.sleep(0)
        while not receiver.done():
            waiting_on = receiver._fut_waiter  # the future the task sleeps on (CPython's Task)
            if waiting_on is not None and waiting_on.done():
                receiver.cancel()
                cancelled += 1
                break
            await asyncio.sleep(0)
        try:
            message = await receiver
        except asyncio.CancelledError:
            continue  # the message, if one was handed over, must come with the next receive()
        if message["type"] == "websocket.disconnect":
            return
        if message["text"] == "end":
            await send({"type": "websocket.send", "text": json.dumps({"got": got, "cancelled": cancelled})})
        else:
            got.append(message["text"])
            await send({"type": "websocket.send", "text": f"got {message['text']}"})
