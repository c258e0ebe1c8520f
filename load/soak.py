#!/usr/bin/env python3
"""The soak: long mixed load on the FastAPI scenarios app, the server's memory and descriptors watched.

    load/soak.py [--minutes N] [--io auto|uring|epoll] [--json out.json]

One dbridge-asgi process serves load/dbridge_bench/apps/scenarios_app.py; wrk sends a
rotation of its endpoints (JSON GET, path and query parameters, a JSON POST, a 4 KB
body, a POST echo, a FileResponse, a StreamingResponse, a sleeping handler) on a few
keep-alive connections, paced by wrk's delay() so the soak does not take the whole
machine. Every SAMPLE_SECONDS the server's VmRSS and open descriptors are read from /proc.

Pass, after the warm-up (allocator pools, caches and the first buffers of each kind
settle there):
  - the least-squares slope of RSS over time is below --max-slope (MiB per minute);
    the default, 1 MiB/min, is what a leak of ~17 bytes per request makes at 1000
    requests a second, and is two orders of magnitude above the noise of a flat
    process's RSS (page-granular, a few hundred KiB up or down); the report also gives
    the slope per request, which does not depend on the machine's speed;
  - the descriptor count does not grow (at most the connection count apart: wrk
    reconnects after a Connection: close, a descriptor each);
  - no response outside 2xx and no socket error.
Exit code 0 on pass, 1 on fail, 2 when the soak could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "load" / "dbridge_bench" / "apps"
SAMPLE_SECONDS = 10
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

# The rotation: (method, path, body). Every one answers 2xx.
REQUESTS = [
    ("GET", "/", None),
    ("GET", "/users/42?limit=5&q=soak", None),
    ("POST", "/items", b'{"name":"widget","description":"a soak item","price":9.5,"tags":["a","b","c"]}'),
    ("GET", "/bytes/4096", None),
    ("POST", "/echo", b"e" * 2048),
    ("GET", "/file", None),
    ("GET", "/stream", None),
    ("GET", "/slow", None),
]

WRK_SCRIPT = """
-- Globals, not locals: done() reads each thread's `unexpected` with thread:get().
requests = {}
index = 0
unexpected = 0
threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
%(requests)s
end

function delay()
  return %(delay_ms)d
end

function request()
  index = index %% #requests + 1
  return requests[index]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, percentiles)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("unexpected")
  end
  io.write(string.format("SOAK requests=%%d unexpected=%%d connect=%%d read=%%d write=%%d status=%%d timeout=%%d\\n",
    summary.requests, total, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
"""


def lua_string(data: bytes) -> str:
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def wrk_script(delay_ms: int) -> str:
    lines = []
    for method, path, body in REQUESTS:
        headers = '{["Content-Type"] = "application/json"}' if body is not None else "{}"
        body_lua = lua_string(body) if body is not None else "nil"
        lines.append(f'  table.insert(requests, wrk.format("{method}", "{path}", {headers}, {body_lua}))')
    return WRK_SCRIPT % {"requests": "\n".join(lines), "delay_ms": delay_ms}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx


def start_server(io: str, port: int, log: Path) -> subprocess.Popen:
    script = Path(sys.executable).parent / "dbridge-asgi"
    command = [
        str(script),
        "scenarios_app:app",
        "--app-dir",
        str(APP_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--io",
        io,
        "--no-access-log",
    ]
    with open(log, "wb") as err:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {log.read_text()}")
        if "running on" in log.read_text(errors="replace"):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                return process
            except OSError:
                pass
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"the server did not start within {START_TIMEOUT} s: {log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30")))
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="minutes not judged at the start [default: a fifth of the run, at least 1]",
    )
    parser.add_argument("--io", default="auto", choices=["auto", "uring", "epoll"])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--delay-ms", type=int, default=4, help="pause of each connection between requests")
    parser.add_argument("--max-slope", type=float, default=1.0, help="MiB per minute")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else max(1.0, args.minutes / 5)
    if shutil.which("wrk") is None:
        print("soak: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if warmup >= args.minutes or (args.minutes - warmup) * 60 / SAMPLE_SECONDS < 6:
        print("soak: too short to judge a trend after the warm-up", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="dbridge-soak-"))
    script = workdir / "soak.lua"
    script.write_text(wrk_script(args.delay_ms))
    port = free_port()
    server = start_server(args.io, port, workdir / "server.stderr")
    samples: list[dict] = []
    try:
        wrk = subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{args.connections}",
                f"-d{round(args.minutes * 60)}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started = time.monotonic()
        while wrk.poll() is None:
            time.sleep(SAMPLE_SECONDS - (time.monotonic() - started) % SAMPLE_SECONDS)
            if server.poll() is not None:
                break
            elapsed = time.monotonic() - started
            if elapsed > args.minutes * 60 + 1:
                break
            samples.append(
                {"minute": elapsed / 60, "rss": rss_bytes(server.pid), "fds": open_fds(server.pid)}
            )
            print(
                f"soak: {elapsed / 60:5.1f} min  RSS {samples[-1]['rss'] / 2**20:7.1f} MiB  "
                f"fds {samples[-1]['fds']}",
                flush=True,
            )
        try:
            output, _ = wrk.communicate(timeout=args.minutes * 60 + 120)
        except subprocess.TimeoutExpired:
            wrk.kill()
            output, _ = wrk.communicate()
        server_died = server.poll() is not None
    finally:
        stop(server)

    failures = []
    if server_died:
        failures.append(
            f"the server died (exit code {server.returncode}): {(workdir / 'server.stderr').read_text()[-3000:]}"
        )
    match = re.search(
        r"SOAK requests=(\d+) unexpected=(\d+) connect=(\d+) read=(\d+) write=(\d+) status=(\d+) "
        r"timeout=(\d+)",
        output,
    )
    if match is None:
        print(output)
        print("soak: wrk gave no summary", file=sys.stderr)
        return 2
    requests, unexpected, *errors = (int(v) for v in match.groups())
    judged = [s for s in samples if s["minute"] >= warmup]
    rss_slope = slope([(s["minute"], s["rss"] / 2**20) for s in judged])
    fd_growth = max(s["fds"] for s in judged) - judged[0]["fds"]
    rate = requests / (args.minutes * 60)
    per_request = rss_slope * 2**20 / (rate * 60) if rate else 0.0
    report = {
        "minutes": args.minutes,
        "warmup_minutes": warmup,
        "io": args.io,
        "requests": requests,
        "requests_per_second": rate,
        "unexpected_status": unexpected,
        "socket_errors": dict(zip(["connect", "read", "write", "status", "timeout"], errors)),
        "rss_slope_mib_per_minute": rss_slope,
        "rss_slope_bytes_per_request": per_request,
        "max_slope_mib_per_minute": args.max_slope,
        "fd_growth": fd_growth,
        "samples": samples,
    }
    print(f"soak: {requests} requests ({rate:.0f}/s), {unexpected} outside 2xx, socket errors {errors}")
    print(
        f"soak: RSS slope after {warmup:.1f} min warm-up: {rss_slope:+.3f} MiB/min "
        f"({per_request:+.2f} bytes/request), limit {args.max_slope} MiB/min; fd growth {fd_growth}"
    )
    if rss_slope >= args.max_slope:
        failures.append(f"RSS grows by {rss_slope:.3f} MiB/min")
    if fd_growth > args.connections:
        failures.append(f"open descriptors grew by {fd_growth}")
    if unexpected or any(errors):
        failures.append(f"{unexpected} responses outside 2xx, socket errors {errors}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    for failure in failures:
        print(f"soak: FAIL: {failure}", file=sys.stderr)
    if not failures:
        print("soak: pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
