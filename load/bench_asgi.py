#!/usr/bin/env python3
"""dbridge-asgi against uvicorn (uvloop + httptools) and granian on the same ASGI apps.

Scenarios (apps in load/apps/):

  raw           raw ASGI "Hello, world!" (GET /)
  fastapi_get   FastAPI GET / returning a small JSON object
  fastapi_post  FastAPI POST /items with a 1 KB JSON body into a pydantic model

Each server is pinned to CPU 0 (with every process it starts), wrk -t1 -c64 to CPU 1;
servers take turns (A B C A B C ...) for `--rounds`. Figures: requests/s, p50/p99
latency, and server CPU time (utime + stime of the server's whole process tree) per
request, with ratios to uvicorn from the same run. The C-only responder, when given,
is the floor for the raw scenario.

    .venv/bin/python load/bench_asgi.py [--scenarios raw,fastapi_get,fastapi_post]
        [--duration 10] [--rounds 2] [--responder build/cpp/dbridge-responder] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_core as core

APPS = Path(__file__).resolve().parent / "apps"
BIN = Path(sys.executable).parent

POST_BODY = json.dumps(
    {
        "name": "widget",
        "description": "x" * 800,
        "price": 12.5,
        "tags": [f"tag{i}" for i in range(20)],
    }
)
assert 1000 <= len(POST_BODY) <= 1100, len(POST_BODY)

SCENARIOS = {
    "raw": {"app": "raw_hello:app", "path": "/", "script": None},
    "fastapi_get": {"app": "fastapi_app:app", "path": "/", "script": None},
    "fastapi_post": {"app": "fastapi_app:app", "path": "/items", "script": "post"},
}

POST_SCRIPT = """\
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
"""


def server_command(name: str, app: str, port: int, args: argparse.Namespace) -> list[str]:
    if name.startswith("dbridge-asgi:"):
        # A variant: dbridge-asgi:LOOP runs with --loop LOOP (ring, uvloop, asyncio).
        return [*server_command("dbridge-asgi", app, port, args), "--loop", name.split(":", 1)[1]]
    if name == "dbridge-asgi":
        return [
            str(BIN / "dbridge-asgi"),
            app,
            "--app-dir",
            str(APPS),
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--io",
            args.io,
        ]
    if name == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--app-dir",
            str(APPS),
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if name == "granian":
        return [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-ws",
            "--working-dir",
            str(APPS),
            app,
        ]
    if name == "responder":
        return [str(Path(args.responder).resolve()), "--host", "127.0.0.1", "--port", str(port)]
    raise ValueError(name)


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its descendants (granian serves from a child process)."""
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            total += core.cpu_seconds(p)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def wait_ready(process: subprocess.Popen, port: int, path: str, log: Path, name: str) -> None:
    deadline = time.monotonic() + 20
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise core.BenchError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(request)
                data = s.recv(65536)
            if data.startswith((b"HTTP/1.1 200", b"HTTP/1.1 405")):
                return
            raise core.BenchError(f"{name} answered {data[:200]!r}")
        except OSError:
            time.sleep(0.1)
    raise core.BenchError(f"{name} did not serve within 20 s:\n{log.read_text()}")


def run(args: argparse.Namespace) -> list[dict]:
    results = []
    started: list[subprocess.Popen] = []
    servers = args.servers
    with tempfile.TemporaryDirectory(prefix="dbridge-bench-") as tmp:
        workdir = Path(tmp)
        post_script = workdir / "post.lua"
        post_script.write_text(POST_SCRIPT.format(body=POST_BODY))
        try:
            for rnd in range(1, args.rounds + 1):
                for scenario in args.scenarios:
                    spec = SCENARIOS[scenario]
                    names = servers + (["responder"] if scenario == "raw" and args.responder else [])
                    for name in names:
                        port = core.free_port()
                        log = workdir / f"{name}-{scenario}.log"
                        command = server_command(name, spec["app"], port, args)
                        with open(log, "wb") as out:
                            process = subprocess.Popen(
                                ["taskset", "-c", core.SERVER_CPU, *command],
                                stdin=subprocess.DEVNULL,
                                stdout=out,
                                stderr=out,
                                start_new_session=True,
                                cwd=str(APPS),
                            )
                        started.append(process)
                        try:
                            wait_ready(process, port, "/" if spec["script"] else spec["path"], log, name)
                            # Warm up (imports, caches, JIT-less but allocator warm) before measuring.
                            core.run_wrk(
                                port, 2, post_script if spec["script"] else None, started, spec["path"]
                            )
                            before = tree_cpu_seconds(process.pid)
                            wrk = core.run_wrk(
                                port,
                                args.duration,
                                post_script if spec["script"] else None,
                                started,
                                spec["path"],
                            )
                            after = tree_cpu_seconds(process.pid)
                        finally:
                            core.stop_process(process)
                        if wrk["non_2xx"] or wrk["requests"] == 0:
                            raise core.BenchError(
                                f"{name} {scenario}: {wrk['non_2xx']} non-2xx of {wrk['requests']}"
                            )
                        row = {
                            "server": name,
                            "scenario": scenario,
                            "round": rnd,
                            **wrk,
                            "cpu_us_per_request": (after - before) * 1e6 / wrk["requests"],
                        }
                        results.append(row)
                        print(
                            f"round {rnd} {scenario:13} {name:13} {wrk['requests_per_second']:>10,.0f} req/s "
                            f"{row['cpu_us_per_request']:7.2f} CPU µs/req  p99 {core.format_latency(wrk['p99_us'])}",
                            flush=True,
                        )
        finally:
            for p in started:
                core.stop_process(p)
    return results


def summarize(results: list[dict]) -> list[dict]:
    rows = []
    keys = sorted(
        {(r["scenario"], r["server"]) for r in results}, key=lambda k: (list(SCENARIOS).index(k[0]), k[1])
    )
    for scenario, server in keys:
        runs = [r for r in results if r["scenario"] == scenario and r["server"] == server]
        rows.append(
            {
                "scenario": scenario,
                "server": server,
                "rps": statistics.median(r["requests_per_second"] for r in runs),
                "p50": core.median_or_none([r["p50_us"] for r in runs]),
                "p99": core.median_or_none([r["p99_us"] for r in runs]),
                "cpu": statistics.median(r["cpu_us_per_request"] for r in runs),
            }
        )
    for row in rows:
        base = next(r for r in rows if r["scenario"] == row["scenario"] and r["server"] == "uvicorn")
        row["rps_ratio"] = row["rps"] / base["rps"]
        row["cpu_ratio"] = row["cpu"] / base["cpu"]
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| scenario | server | req/s | p50 | p99 | CPU µs/req | req/s vs uvicorn | CPU/req vs uvicorn |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['server']} | {r['rps']:,.0f} | {core.format_latency(r['p50'])} | "
            f"{core.format_latency(r['p99'])} | {r['cpu']:.2f} | {r['rps_ratio']:.2f}× | {r['cpu_ratio']:.2f}× |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default="raw,fastapi_get,fastapi_post")
    parser.add_argument(
        "--servers",
        default="dbridge-asgi,uvicorn,granian",
        help="comma-separated; dbridge-asgi:LOOP is dbridge-asgi with --loop LOOP (uvicorn is the baseline)",
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--io", default="auto")
    parser.add_argument("--responder", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.servers = [s for s in args.servers.split(",") if s]
    for s in args.scenarios:
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    results = run(args)
    rows = summarize(results)
    print()
    print(
        f"server on CPU {core.SERVER_CPU}, wrk -t1 -c{core.CONNECTIONS} on CPU {core.LOAD_CPU}, "
        f"{args.duration} s per run, median of {args.rounds} round(s)"
    )
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "summary": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
