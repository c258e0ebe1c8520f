"""The scenarios shipped in load/: a request shape (method, path, body, connections,
pipelining, keep-alive; for WebSocket scenarios the message size and how many are in
flight) and the app it runs against (apps/ here). A user's own app runs
with a scenario built from the command line (`--path`, `--method`, `--body-file`, ...)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

APPS_DIR = Path(__file__).resolve().parent / "apps"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"

POST_1K = json.dumps(
    {"name": "widget", "description": "x" * 800, "price": 12.5, "tags": [f"tag{i}" for i in range(20)]}
).encode()
ECHO_10K = bytes(range(256)) * 40


@dataclass
class Scenario:
    name: str
    description: str
    app: str | None  # import string; None: the app given on the command line
    path: str = "/"
    method: str = "GET"
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    connections: int = 64
    pipeline: int = 1
    keep_alive: bool = True
    # "wrk", "idle" (held connections, memory per connection), "locust", "ws" (WebSocket
    # echo through dbridge-wsload: a "request" is one message sent and its echo received)
    kind: str = "wrk"
    idle_connections: int = 10_000
    locust_users: int = 32
    message_size: int = 1024  # ws: bytes per message
    in_flight: int = 1  # ws: messages on the wire per connection
    locust_user: str = "ApiUser"  # the User class of locustfile.py that runs

    def probe(self) -> bytes:
        """A request that proves the server is up (any response will do)."""
        return f"GET {self.path.split('?')[0]} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()


RAW = "raw_hello:app"
RAW_WS = "raw_ws_echo:app"
FASTAPI = "scenarios_app:app"

SHIPPED = {
    s.name: s
    for s in [
        Scenario("raw", "raw ASGI plaintext \"Hello, world!\"", RAW),
        Scenario("pipelined16", "raw ASGI plaintext, 16 requests per write (TechEmpower style)", RAW,
                 pipeline=16),
        Scenario("fastapi_get", "FastAPI GET returning a small JSON object", FASTAPI),
        Scenario("fastapi_post", "FastAPI POST of a 1 KB JSON body into a pydantic model", FASTAPI,
                 path="/items", method="POST", body=POST_1K, headers=[("Content-Type", "application/json")]),
        Scenario("params", "FastAPI path and query parameters", FASTAPI, path="/users/42?limit=10&q=abc"),
        Scenario("bytes_10k", "FastAPI 10 KB response", FASTAPI, path="/bytes/10240"),
        Scenario("bytes_1m", "FastAPI 1 MB response", FASTAPI, path="/bytes/1048576", connections=16),
        Scenario("echo_10k", "FastAPI 10 KB echo (read the body, send it back)", FASTAPI, path="/echo",
                 method="POST", body=ECHO_10K, headers=[("Content-Type", "application/octet-stream")]),
        Scenario("file_50k", "FastAPI FileResponse of a 50 KB file", FASTAPI, path="/file"),
        Scenario("stream_100", "FastAPI StreamingResponse of 100 chunks", FASTAPI, path="/stream"),
        Scenario("slow_512", "FastAPI endpoint awaiting asyncio.sleep(0.01), 512 connections", FASTAPI,
                 path="/slow", connections=512),
        Scenario("no_keepalive", "raw ASGI plaintext, a new connection per request", RAW, keep_alive=False),
        Scenario("idle_10k", "10,000 idle keep-alive connections: server memory per connection", RAW,
                 kind="idle"),
        Scenario("locust_mix", "a locust mix of the FastAPI endpoints with think time", FASTAPI,
                 kind="locust"),
        Scenario("ws_echo", "FastAPI WebSocket echo of 1 KB text messages, 64 connections "
                 "(a request = a message)", FASTAPI, path="/ws", kind="ws"),
        Scenario("ws_echo_raw", "raw ASGI WebSocket echo of 1 KB text messages, 64 connections "
                 "(a request = a message)", RAW_WS, path="/", kind="ws"),
    ]
}


def shipped(names: str) -> list[Scenario]:
    """Copies of the shipped scenarios named (comma-separated), to be adjusted freely."""
    result = []
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        if name not in SHIPPED:
            known = ", ".join(SHIPPED)
            raise ValueError(f"unknown scenario {name!r}; shipped scenarios: {known}")
        result.append(dataclasses.replace(SHIPPED[name]))
    return result
