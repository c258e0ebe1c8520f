"""X-Forwarded-For / X-Forwarded-Proto from trusted proxies, differential against uvicorn.

Each configuration starts uvicorn (uvloop, httptools) and dbridge-asgi with the same
options; every case sends the same raw request from 127.0.0.1 to both and compares the
scope's client and scheme as tests/apps/raw_app.py echoes them. uvicorn applies these
headers in its ProxyHeadersMiddleware; we apply them in the core (asgi/proxy_headers.cc).
A few cases also state the expected value outright, so a bug both servers shared would
still show.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_servers import (
    REPO,
    START_TIMEOUT,
    ServerProcess,
    _command,
    free_tcp_port,
    serve,
    server_environment,
    stop_process,
)
from raw_http import build_request, exchange

APP = "raw_app:app"

# name -> (command-line options, environment) given to both servers
CONFIGS: dict[str, tuple[list[str], dict[str, str]]] = {
    "default": ([], {}),  # 127.0.0.1 and ::1 trusted
    "networks-from-env": ([], {"FORWARDED_ALLOW_IPS": "127.0.0.1, 10.0.0.0/8, 2001:db8::/32, proxy.local"}),
    "peer-not-trusted": (["--forwarded-allow-ips", "10.0.0.0/8"], {}),
    "everyone": (["--forwarded-allow-ips", "*"], {}),
    "off": (["--no-proxy-headers"], {}),
}

# name -> the extra request fields
CASES: dict[str, list[tuple[str, str]]] = {
    "none": [],
    "for-one": [("X-Forwarded-For", "203.0.113.7")],
    "for-chain-untrusted-last": [("X-Forwarded-For", "203.0.113.7, 10.1.2.3")],
    "for-chain-trusted-last": [("X-Forwarded-For", "203.0.113.7, 127.0.0.1")],
    "for-all-trusted": [("X-Forwarded-For", "127.0.0.1, ::1")],
    "for-two-fields": [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "203.0.113.7, 127.0.0.1")],
    "for-with-port": [("X-Forwarded-For", "203.0.113.7:4711")],
    "for-ipv6-bracketed-port": [("X-Forwarded-For", "[2001:db8::1]:443")],
    "for-ipv6-bare": [("X-Forwarded-For", "2001:db8::1")],
    "for-ipv6-trusted-bracketed": [("X-Forwarded-For", "203.0.113.7, [::1]:80")],
    "for-bad-port": [("X-Forwarded-For", "203.0.113.7:http")],
    "for-empty": [("X-Forwarded-For", "")],
    "for-empty-last-entry": [("X-Forwarded-For", "203.0.113.7, ")],
    "for-whitespace": [("X-Forwarded-For", "  203.0.113.7  ,  127.0.0.1 ")],
    "for-name": [("X-Forwarded-For", "unknown, proxy.local")],
    "for-leading-zero": [("X-Forwarded-For", "127.000.0.1")],
    "for-mapped-ipv4": [("X-Forwarded-For", "203.0.113.7, ::ffff:127.0.0.1")],
    "for-name-case": [("x-FORWARDED-for", "203.0.113.7")],
    "proto-https": [("X-Forwarded-Proto", "https")],
    "proto-wss": [("X-Forwarded-Proto", "wss")],
    "proto-upper-case": [("X-Forwarded-Proto", "HTTPS")],
    "proto-other": [("X-Forwarded-Proto", "ftp")],
    "proto-last-field-wins": [("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")],
    "proto-and-for": [("X-Forwarded-Proto", " https "), ("X-Forwarded-For", "203.0.113.7, 10.1.2.3")],
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, ServerProcess]]]:
    args, env = CONFIGS[request.param]
    log_dir: Path = tmp_path_factory.mktemp(f"proxy-{request.param}")
    with contextlib.ExitStack() as stack:
        running = {
            kind: stack.enter_context(
                contextlib.contextmanager(serve)(kind, APP, log_dir, args=args, env=env)
            )
            for kind in ("uvicorn", "dbridge-asgi")
        }
        yield request.param, running


def request_scope(
    server: ServerProcess, fields: list[tuple[str, str]], target: str = "/scope"
) -> tuple[dict[str, Any], list[Any]]:
    """The scope raw_app echoes for one request on a new connection, and that connection's address."""
    with server.connect() as sock:
        response = exchange(sock, build_request("GET", target, [("Host", "test"), *fields]))
        assert response.status == 200, response
        return json.loads(response.body), ["127.0.0.1", sock.getsockname()[1]]


def observe(server: ServerProcess, fields: list[tuple[str, str]]) -> tuple[Any, str]:
    """(client, scheme) of the scope; a client that is the connection's own address reads "peer"."""
    scope, peer = request_scope(server, fields)
    client = "peer" if scope["client"] == peer else scope["client"]
    return client, scope["scheme"]


# What the rules say, independently of uvicorn: (config, case) -> (client, scheme).
EXPECTED = {
    ("default", "for-one"): (["203.0.113.7", 0], "http"),
    ("default", "for-chain-untrusted-last"): (["10.1.2.3", 0], "http"),
    ("default", "for-chain-trusted-last"): (["203.0.113.7", 0], "http"),
    ("default", "for-all-trusted"): (["127.0.0.1", 0], "http"),
    ("default", "for-two-fields"): (["203.0.113.7", 0], "http"),
    ("default", "for-with-port"): (["203.0.113.7", 4711], "http"),
    ("default", "for-ipv6-bracketed-port"): (["2001:db8::1", 443], "http"),
    ("default", "for-empty"): ("peer", "http"),
    ("default", "proto-and-for"): (["10.1.2.3", 0], "https"),
    ("default", "proto-other"): ("peer", "http"),
    ("networks-from-env", "proto-and-for"): (["203.0.113.7", 0], "https"),
    ("networks-from-env", "for-name"): (["unknown", 0], "http"),
    ("peer-not-trusted", "proto-and-for"): ("peer", "http"),
    ("everyone", "for-chain-untrusted-last"): (["203.0.113.7", 0], "http"),
    ("off", "proto-and-for"): ("peer", "http"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_client_and_scheme_match_uvicorn(servers: tuple[str, dict[str, ServerProcess]], case: str) -> None:
    config, running = servers
    fields = CASES[case]
    ours = observe(running["dbridge-asgi"], fields)
    theirs = observe(running["uvicorn"], fields)
    assert ours == theirs, f"[{config}] {case}: dbridge-asgi gives {ours}, uvicorn {theirs}"
    if (config, case) in EXPECTED:
        assert ours == EXPECTED[config, case], f"[{config}] {case}: both give {ours}"


def test_headers_apply_per_request_on_a_kept_alive_connection(
    servers: tuple[str, dict[str, ServerProcess]],
) -> None:
    """The trust decision is per connection, the headers per request: a second request without them
    is the peer again."""
    _, running = servers
    server = running["dbridge-asgi"]
    forwarded_client = request_scope(server, [("X-Forwarded-For", "203.0.113.7")])[0]["client"]
    with server.connect() as sock:
        peer = ["127.0.0.1", sock.getsockname()[1]]
        requests = [
            build_request("GET", "/scope", [("Host", "t"), ("X-Forwarded-For", "203.0.113.7")]),
            build_request("GET", "/scope", [("Host", "t")]),
        ]
        clients = [json.loads(exchange(sock, request).body)["client"] for request in requests]
    first = peer if forwarded_client[0] == "127.0.0.1" else forwarded_client
    assert clients == [first, peer]


def test_access_log_shows_the_scope_client_as_uvicorn(servers: tuple[str, dict[str, ServerProcess]]) -> None:
    config, running = servers
    lines = {}
    for kind, server in running.items():
        target = f"/scope?mark={uuid.uuid4().hex}"
        _, peer = request_scope(server, [("X-Forwarded-For", "203.0.113.7:4711")], target=target)
        text = server.wait_for_output(target, stream="stdout")
        line = next(line for line in text.splitlines() if target in line)
        # The connection's own address differs between the two servers; name it.
        lines[kind] = line.replace(f"{peer[0]}:{peer[1]} ", "PEER ").replace(target, "/scope?mark=M")
    assert lines["dbridge-asgi"] == lines["uvicorn"], lines
    forwarded = config in ("default", "networks-from-env", "everyone")
    client = "203.0.113.7:4711" if forwarded else "PEER"
    assert lines["dbridge-asgi"] == f'INFO:     {client} - "GET /scope?mark=M HTTP/1.1" 200 OK'


# ---- Unix socket: the peer has no address (scope client None) ---------------------------------


@contextlib.contextmanager
def serve_on_unix_socket(kind: str, path: Path, args: list[str], log_dir: Path) -> Iterator[subprocess.Popen]:
    stderr_path = log_dir / f"{kind}-uds.stderr"
    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            _command(kind, APP, free_tcp_port(), None, ["--uds", str(path), *args]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=REPO,
            env=server_environment(),
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ("running on" in stderr_path.read_text() and path.exists()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{kind} did not start on {path}: {stderr_path.read_text()}", pytrace=False)
            time.sleep(0.02)
        yield process
    finally:
        stop_process(process)


def scope_over_unix_socket(path: Path, fields: list[tuple[str, str]]) -> tuple[Any, str]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        scope = json.loads(exchange(sock, build_request("GET", "/scope", [("Host", "t"), *fields])).body)
    return scope["client"], scope["scheme"]


@pytest.mark.parametrize(
    "allow, expected",
    [
        # uvicorn trusts a peer without an address only with "*"; a literal never matches None.
        ("*", (["203.0.113.7", 0], "https")),
        ("127.0.0.1,unix:,/tmp", (None, "http")),
    ],
)
def test_unix_socket_peer_is_trusted_only_with_a_star(
    allow: str, expected: tuple[Any, str], tmp_path: Path
) -> None:
    fields = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")]
    seen = {}
    for kind in ("uvicorn", "dbridge-asgi"):
        path = tmp_path / f"{kind}.sock"
        with serve_on_unix_socket(kind, path, ["--forwarded-allow-ips", allow], tmp_path):
            seen[kind] = scope_over_unix_socket(path, fields)
    assert seen["dbridge-asgi"] == seen["uvicorn"] == expected, seen
