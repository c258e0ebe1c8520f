"""A raw ASGI 3 app for the end-to-end tests: no framework between the server and the test.

Served with `--app-dir tests/apps raw_app:app`. Routes are matched on the path below
root_path (uvicorn 0.26+ puts root_path into path), so the same app runs with and
without --root-path:

    /scope...          the scope as JSON (any path below /scope, for path decoding tests)
    /echo              the whole request body back
    /stream?n=N        N chunks with more_body=True, then an empty final one
    /boom              raises before http.response.start
    /boom-after-start  starts a chunked response, sends a chunk, then raises
    /no-response       returns without sending anything
    /short             declares content-length 10 and sends 5 bytes
    /slow-body         reads the body with a pause after every message; answers its size and sha256
    /receive-cancelled reads the body, then twice waits 50 ms for another message and gives up
                       (a cancelled receive(), as with asyncio.wait_for or anyio's move_on_after)
    /receive-twice     reads the body, then has two tasks wait in receive() at once (what
                       Starlette's StreamingResponse and request.is_disconnected() do together)
    /late-read         sleeps 0.2 s before reading the body (it piles up in the server meanwhile)
    /keep-receive      keeps receive and send in the scope (a reference cycle, as some
                       middleware make) and answers "ok"
    /live-exchanges    after a gc.collect(), how many request objects of the server are alive
    /pathsend-dir      pathsends a directory (fails), then tries to send a body anyway
    /bytes?n=N         N bytes in one body message
    /task              the type and name of the asyncio task running the request

The lifespan puts {"raw_started": True} into the state, so the scope's state shows it.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

# In the tracebacks of /boom and /boom-after-start: the tests look for it in the server's
# stderr and make sure it never reaches the client.
BOOM_MARKER = "raw-app-boom-7f3c"


def _latin1(value: bytes) -> str:
    return value.decode("latin-1")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": _latin1(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def scope_as_json(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope with bytes as latin-1 text and tuples as lists; types are kept where JSON can."""
    out: dict[str, Any] = {
        "keys": sorted(scope),
        "type": scope["type"],
        "http_version": scope["http_version"],
        "method": scope["method"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "path_type": type(scope["path"]).__name__,
        "raw_path": _latin1(scope["raw_path"]) if scope.get("raw_path") is not None else None,
        "raw_path_type": type(scope.get("raw_path")).__name__,
        "query_string": _latin1(scope["query_string"]),
        "query_string_type": type(scope["query_string"]).__name__,
        "root_path": scope.get("root_path"),
        "headers": [[_latin1(name), _latin1(value)] for name, value in scope["headers"]],
        "header_types": sorted({f"{type(n).__name__},{type(v).__name__}" for n, v in scope["headers"]}),
        "client": list(scope["client"]) if scope.get("client") is not None else None,
        "server": list(scope["server"]) if scope.get("server") is not None else None,
        "asgi": scope["asgi"],
        "state_keys": sorted(scope["state"]) if "state" in scope else None,
        "state": _jsonable(scope.get("state")),
    }
    if "extensions" in scope:
        out["extensions"] = _jsonable(scope["extensions"])
    return out


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected while sending the body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_bytes(send: Any, body: bytes, content_type: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Any, payload: Any, status: int = 200) -> None:
    await send_bytes(send, json.dumps(payload).encode(), b"application/json", status)


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["raw_started"] = True
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def route_of(scope: dict[str, Any]) -> str:
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :]
    return path


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    assert scope["type"] == "http", scope["type"]
    route = route_of(scope)
    query = parse_qs(scope["query_string"].decode("latin-1"))

    if route.startswith("/scope"):
        await send_json(send, scope_as_json(scope))
    elif route == "/echo":
        body = await read_body(receive)
        await send_bytes(send, body, b"application/octet-stream")
    elif route == "/stream":
        count = int(query.get("n", ["5"])[0])
        delay = float(query.get("delay", ["0"])[0])
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for i in range(count):
            await send({"type": "http.response.body", "body": f"chunk-{i}\n".encode(), "more_body": True})
            if delay:
                await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif route == "/boom":
        raise RuntimeError(f"{BOOM_MARKER}: raised before the response started")
    elif route == "/boom-after-start":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"partial ", "more_body": True})
        raise RuntimeError(f"{BOOM_MARKER}: raised after the response started")
    elif route == "/no-response":
        return
    elif route == "/short":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"10")],
            }
        )
        await send({"type": "http.response.body", "body": b"12345", "more_body": False})
    elif route == "/slow-body":
        size, digest = 0, hashlib.sha256()
        while True:
            message = await receive()
            assert message["type"] == "http.request", message["type"]
            size += len(message["body"])
            digest.update(message["body"])
            if not message.get("more_body", False):
                break
            await asyncio.sleep(0.005)
        await send_json(send, {"size": size, "sha256": digest.hexdigest()})
    elif route == "/receive-cancelled":
        await read_body(receive)
        outcomes = [await receive_outcome(receive, timeout=0.05) for _ in range(2)]
        await send_json(send, {"outcomes": outcomes})
    elif route == "/receive-twice":
        await read_body(receive)
        waiters = [asyncio.ensure_future(receive_outcome(receive, timeout=0.1)) for _ in range(2)]
        await send_json(send, {"outcomes": list(await asyncio.gather(*waiters))})
    elif route == "/late-read":
        await asyncio.sleep(0.2)
        body = await read_body(receive)
        await send_json(send, {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()})
    elif route == "/keep-receive":
        scope["receive"], scope["send"] = receive, send
        await send_bytes(send, b"ok", b"text/plain")
    elif route == "/live-exchanges":
        gc.collect()
        alive = sum(1 for o in gc.get_objects() if type(o).__name__ == "Exchange")
        await send_json(send, {"alive": alive})
    elif route == "/task":
        task = asyncio.current_task()
        await send_json(send, {"type": type(task).__name__, "name": task.get_name() if task else None})
    elif route == "/pathsend-dir":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"8")]})
        try:
            await send({"type": "http.response.pathsend", "path": str(Path(__file__).parent)})
        except OSError:
            await send({"type": "http.response.body", "body": b"fallback"})
    elif route == "/bytes":
        size = int(query.get("n", ["0"])[0])
        await send_bytes(send, b"x" * size, b"application/octet-stream")
    else:
        await send_bytes(send, b"Not Found", b"text/plain; charset=utf-8", status=404)


async def receive_outcome(receive: Any, timeout: float) -> str:
    """What one receive() gives within `timeout`: a message type, "timeout", or the error."""
    try:
        message = await asyncio.wait_for(receive(), timeout)
    except asyncio.TimeoutError:
        return "timeout"
    except Exception as exc:  # noqa: BLE001 - the test wants to see what the server raised
        return f"{type(exc).__name__}: {exc}"
    return message["type"]
