#!/usr/bin/env python3
"""`gunicorn -k dbridge_asgi.workers.DBridgeWorker` against `-k uvicorn_worker.UvicornWorker`.

The FastAPI JSON GET of load/apps/fastapi_app.py, served by `gunicorn -w 2` with each worker
class in turn (A B A B ... for `--rounds`). The arbiter and its workers are pinned to CPU 0,
wrk -t1 -c64 to CPU 1, as in bench_asgi.py. Figures: requests/s, p50/p99, server CPU time
per request (arbiter and workers together), how the CPU time split over the workers (a
worker that gets no connections shows as 0 %), and the ratios DBridgeWorker / UvicornWorker.

    .venv/bin/python load/bench_gunicorn.py [--duration 10] [--rounds 2] [--workers 2]
        [--reuse-port] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_asgi
import bench_core as core

APPS = Path(__file__).resolve().parent / "apps"
GUNICORN = Path(sys.executable).parent / "gunicorn"
WORKERS = {
    "DBridgeWorker": "dbridge_asgi.workers.DBridgeWorker",
    "UvicornWorker": "uvicorn_worker.UvicornWorker",
}
APP = "fastapi_app:app"
PATH = "/"


def gunicorn_command(worker_class: str, port: int, args: argparse.Namespace) -> list[str]:
    command = [
        str(GUNICORN),
        "-k",
        worker_class,
        "-w",
        str(args.workers),
        "-b",
        f"127.0.0.1:{port}",
        "--chdir",
        str(APPS),
        "--log-level",
        "warning",
    ]
    if args.reuse_port:
        command.append("--reuse-port")
    return [*command, APP]


def worker_pids(arbiter: int) -> list[int]:
    pids = []
    for task in os.listdir(f"/proc/{arbiter}/task"):
        with open(f"/proc/{arbiter}/task/{task}/children") as f:
            pids.extend(int(c) for c in f.read().split())
    return pids


def measure_once(name: str, rnd: int, args: argparse.Namespace, workdir: Path, started: list) -> dict:
    port = core.free_port()
    log = workdir / f"{name}-{rnd}.log"
    # The control socket of Gunicorn 27 goes to $XDG_RUNTIME_DIR: one per run.
    env = {**os.environ, "XDG_RUNTIME_DIR": str(workdir)}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", core.SERVER_CPU, *gunicorn_command(WORKERS[name], port, args)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            env=env,
        )
    started.append(process)
    try:
        bench_asgi.wait_ready(process, port, PATH, log, name)
        # Warm-up: imports, caches, every worker booted.
        core.run_wrk(port, min(2, args.duration), None, started, PATH)
        workers = worker_pids(process.pid)
        before = {pid: core.cpu_seconds(pid) for pid in workers}
        total_before = bench_asgi.tree_cpu_seconds(process.pid)
        wrk = core.run_wrk(port, args.duration, None, started, PATH)
        total_after = bench_asgi.tree_cpu_seconds(process.pid)
        spent = {pid: core.cpu_seconds(pid) - before[pid] for pid in workers}
    finally:
        core.stop_process(process)
    if wrk["non_2xx"] or wrk["requests"] == 0:
        raise core.BenchError(f"{name}: {wrk['non_2xx']} non-2xx of {wrk['requests']}:\n{log.read_text()}")
    worker_total = sum(spent.values()) or 1.0
    row = {
        "worker": name,
        "round": rnd,
        **wrk,
        "cpu_us_per_request": (total_after - total_before) * 1e6 / wrk["requests"],
        "worker_cpu_shares": sorted((round(100 * s / worker_total) for s in spent.values()), reverse=True),
    }
    print(
        f"round {rnd} {name:14} {wrk['requests_per_second']:>10,.0f} req/s "
        f"{row['cpu_us_per_request']:7.2f} CPU µs/req  p99 {core.format_latency(wrk['p99_us'])}  "
        f"worker CPU split {row['worker_cpu_shares']} %",
        flush=True,
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reuse-port", action="store_true", help="pass --reuse-port to gunicorn")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not GUNICORN.is_file():
        parser.error(f"{GUNICORN} is missing: install the test extras (gunicorn, uvicorn-worker)")

    results: list[dict] = []
    started: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="dbridge-bench-gunicorn-") as tmp:
        try:
            for rnd in range(1, args.rounds + 1):
                for name in WORKERS:
                    results.append(measure_once(name, rnd, args, Path(tmp), started))
        finally:
            for process in started:
                core.stop_process(process)

    medians = {
        name: {
            "rps": statistics.median(r["requests_per_second"] for r in results if r["worker"] == name),
            "cpu": statistics.median(r["cpu_us_per_request"] for r in results if r["worker"] == name),
        }
        for name in WORKERS
    }
    ours, theirs = medians["DBridgeWorker"], medians["UvicornWorker"]
    print()
    print(
        f"gunicorn -w {args.workers}{' --reuse-port' if args.reuse_port else ''} on CPU {core.SERVER_CPU}, "
        f"wrk -t1 -c{core.CONNECTIONS} on CPU {core.LOAD_CPU}, {args.duration} s per run, "
        f"median of {args.rounds} round(s), FastAPI GET {PATH}"
    )
    for name, m in medians.items():
        print(f"  {name:14} {m['rps']:>10,.0f} req/s  {m['cpu']:7.2f} CPU µs/req")
    print(
        f"  DBridgeWorker / UvicornWorker: {ours['rps'] / theirs['rps']:.2f}× req/s, "
        f"{ours['cpu'] / theirs['cpu']:.2f}× CPU per request"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
