#!/usr/bin/env python3
"""Instructions per request of a whole ASGI server process, Python included, under callgrind.

Where load/callgrind_gate.py measures the C++ core alone, this measures what a request
costs the server in user space with the interpreter, the event loop and the app on top:
the server runs under `valgrind --tool=callgrind`; after a warm-up the counters are
zeroed (callgrind_control -z), a fixed load is sent, and the counters are dumped
(callgrind_control -d). The load is ROUNDS batches of one request on each of 64
keep-alive connections, all written before any response is read, so each wake-up of
the server handles a batch as under wrk. The figure is exact and repeatable (it does not
move with the machine's load), unlike CPU time; it leaves out the kernel's share.

    python3 load/callgrind_asgi.py [--server dbridge-asgi|uvicorn] [--scenario raw|fastapi_get|fastapi_post|echo_10k]
                                   [--rounds 100] [--keep DIR]

The dump's per-function costs (callgrind_annotate FILE) show where the instructions go;
--keep keeps it. dbridge-asgi runs on epoll here: valgrind does not follow io_uring's
shared rings, and the request path above the backend is the same code.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APPS = Path(__file__).resolve().parent / "dbridge_bench" / "apps"
CONNECTIONS = 64
WARMUP_ROUNDS = 20
START_TIMEOUT = 120.0  # the interpreter starts some 50 times slower under valgrind

ECHO_BODY = bytes(range(256)) * 40
POST_1K = json.dumps(
    {"name": "widget", "description": "x" * 800, "price": 12.5, "tags": [f"tag{i}" for i in range(20)]}
).encode()
SCENARIOS = {
    "raw": ("raw_hello:app", b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: cg\r\nAccept: */*\r\n\r\n"),
    "fastapi_get": ("scenarios_app:app", b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: cg\r\nAccept: */*\r\n\r\n"),
    "fastapi_post": (
        "scenarios_app:app",
        b"POST /items HTTP/1.1\r\nHost: bench\r\nUser-Agent: cg\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(POST_1K) + POST_1K,
    ),
    "echo_10k": (
        "scenarios_app:app",
        b"POST /echo HTTP/1.1\r\nHost: bench\r\nUser-Agent: cg\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: %d\r\n\r\n" % len(ECHO_BODY) + ECHO_BODY,
    ),
}


def server_command(server: str, app: str, port: int) -> list[str]:
    if server == "dbridge-asgi":
        return [sys.executable, "-m", "dbridge_asgi", app, "--port", str(port), "--io", "epoll",
                "--log-level", "warning", "--no-access-log"]
    return [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--log-level", "warning", "--no-access-log"]


def read_response(sock: socket.socket, pending: bytearray) -> None:
    """Consumes one Content-Length response from `pending` + the socket."""
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("callgrind_asgi: the server closed a connection")
        pending += chunk
    head_end = pending.index(b"\r\n\r\n") + 4
    match = re.search(rb"(?im)^content-length:\s*(\d+)", bytes(pending[:head_end]))
    if match is None or not pending.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"callgrind_asgi: unexpected response {bytes(pending[:200])!r}")
    end = head_end + int(match.group(1))
    while len(pending) < end:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("callgrind_asgi: the server closed a connection")
        pending += chunk
    del pending[:end]


def send_rounds(port: int, request: bytes, rounds: int) -> None:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=120) for _ in range(CONNECTIONS)]
    buffers = [bytearray() for _ in socks]
    try:
        for _ in range(rounds):
            for s in socks:
                s.sendall(request)
            for s, pending in zip(socks, buffers):
                read_response(s, pending)
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(server: str, scenario: str, rounds: int, workdir: Path) -> tuple[float, Path]:
    app, request = SCENARIOS[scenario]
    port = free_port()
    out = workdir / f"{server}-{scenario}.callgrind"
    log = open(workdir / f"{server}.log", "wb")
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *server_command(server, app, port)],
        cwd=APPS, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                send_rounds(port, request, 1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"callgrind_asgi: {server} did not start; see {workdir / (server + '.log')}")
                time.sleep(1)
        send_rounds(port, request, WARMUP_ROUNDS)
        subprocess.run(["callgrind_control", "-z", str(process.pid)], check=True, capture_output=True, timeout=60)
        send_rounds(port, request, rounds)
        subprocess.run(["callgrind_control", "-d", str(process.pid)], check=True, capture_output=True, timeout=60)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()
    # The first dump of a run is FILE.1 (the final one, at exit, is FILE itself).
    dump = out.with_name(out.name + ".1")
    if not dump.exists():
        raise SystemExit(f"callgrind_asgi: no dump from callgrind_control in {workdir}")
    match = re.search(r"^(?:summary|totals):\s+(\d+)", dump.read_text(errors="replace"), re.MULTILINE)
    if match is None:
        raise SystemExit(f"callgrind_asgi: no instruction total in {dump}")
    return int(match.group(1)) / (rounds * CONNECTIONS), dump


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", action="append", choices=["dbridge-asgi", "uvicorn"],
                        help="server(s) to measure (repeatable; default dbridge-asgi)")
    parser.add_argument("--scenario", default="raw", choices=sorted(SCENARIOS))
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="copy the callgrind dumps into this directory")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("callgrind_asgi: valgrind is not installed (Debian: valgrind)", file=sys.stderr)
        return 2
    servers = args.server or ["dbridge-asgi"]
    with tempfile.TemporaryDirectory(prefix="dbridge-callgrind-asgi-") as tmp:
        figures = {}
        for server in servers:
            per_request, dump = measure(server, args.scenario, args.rounds, Path(tmp))
            figures[server] = per_request
            kept = ""
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                kept = f"  (dump: {shutil.copy(dump, args.keep / dump.name)})"
            print(f"{args.scenario}  {server:<13} {per_request:>10,.0f} instructions per request{kept}")
        if len(figures) > 1:
            base = figures[servers[-1]]
            for server, value in figures.items():
                print(f"{server} / {servers[-1]}: {value / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
