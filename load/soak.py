#!/usr/bin/env python3
"""The soak: long mixed load on the FastAPI scenarios app, the server's memory and descriptors watched.

    load/soak.py [--minutes N] [--io auto|uring|epoll] [--users N] [--json out.json]

One dbridge-asgi process serves load/dbridge_bench/apps/scenarios_app.py; locust, headless,
runs the SoakUser mix of load/dbridge_bench/locustfile.py against it: weighted tasks over
its endpoints (JSON GET, path and query parameters, a JSON POST into a model, a 10 KB
body, a POST echo, a FileResponse, a StreamingResponse, a sleeping handler), each user on
a keep-alive connection with think time, a few hundred requests a second in all so the
load generator takes a fraction of a core. Where there are two CPUs or more the server
is pinned to one and locust to the others. Every SAMPLE_SECONDS the server's RSS and open
descriptors are read from /proc.

Pass, after the warm-up (allocator pools, caches and the first buffers of each kind
settle there):
  - the least-squares slope of RSS over time is below --max-slope (MiB per minute);
    the default, 1 MiB/min, is what a leak of ~17 bytes per request makes at 1000
    requests a second, and is two orders of magnitude above the noise of a flat
    process's RSS (page-granular, a few hundred KiB up or down); the report also gives
    the slope per request, which does not depend on the load's rate;
  - the descriptor count does not grow (at most the user count apart: locust opens a
    connection per user, and reopens one a peer closed);
  - no locust failure: locust counts every status outside 2xx/3xx and every connection
    error as one (its failures CSV names them).
Exit code 0 on pass, 1 on fail, 2 when the soak could not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbridge_bench.loadgen import locust_command, locust_failures, locust_totals
from dbridge_bench.procs import BenchError, free_port, start, stop, tail, wait_until_serving
from dbridge_bench.scenarios import APPS_DIR, SHIPPED

SAMPLE_SECONDS = 10
SCENARIO = dataclasses.replace(SHIPPED["locust_mix"], name="soak", locust_user="SoakUser")


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


def cpu_split() -> tuple[str, str]:
    """(server CPUs, load CPUs) for taskset: apart where there are two or more CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return str(cpus[0]), str(cpus[0])
    return str(cpus[0]), ",".join(str(c) for c in cpus[1:])


def judge(samples: list[dict], warmup: float, requests: int, seconds: float, failures: list[dict],
          max_slope: float, users: int) -> tuple[dict, list[str]]:
    """The verdict on a finished run: its figures, and what failed (empty on a pass)."""
    judged = [s for s in samples if s["minute"] >= warmup]
    rss_slope = slope([(s["minute"], s["rss"] / 2**20) for s in judged])
    fd_growth = max(s["fds"] for s in judged) - judged[0]["fds"]
    rate = requests / seconds if seconds else 0.0
    per_request = rss_slope * 2**20 / (rate * 60) if rate else 0.0
    failed_requests = sum(f["occurrences"] for f in failures)
    figures = {
        "requests": requests,
        "requests_per_second": rate,
        "failed_requests": failed_requests,
        "failures": failures,
        "rss_slope_mib_per_minute": rss_slope,
        "rss_slope_bytes_per_request": per_request,
        "max_slope_mib_per_minute": max_slope,
        "fd_growth": fd_growth,
    }
    verdict = []
    if rss_slope >= max_slope:
        verdict.append(f"RSS grows by {rss_slope:.3f} MiB/min")
    if fd_growth > users:
        verdict.append(f"open descriptors grew by {fd_growth}")
    if requests == 0:
        verdict.append("no request was answered")
    for failure in failures:
        what = f"{failure['method']} {failure['name']}: {failure['error']}"
        verdict.append(f"{failure['occurrences']} × {what}")
    return figures, verdict


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
    parser.add_argument("--users", type=int, default=10, help="locust users, a keep-alive connection each")
    parser.add_argument("--max-slope", type=float, default=1.0, help="MiB per minute")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else max(1.0, args.minutes / 5)
    if warmup >= args.minutes or (args.minutes - warmup) * 60 / SAMPLE_SECONDS < 6:
        print("soak: too short to judge a trend after the warm-up", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="dbridge-soak-"))
    server_cpus, load_cpus = cpu_split()
    port = free_port()
    server_log = workdir / "server.log"
    server_command = [
        str(Path(sys.executable).with_name("dbridge-asgi")), "scenarios_app:app", "--app-dir", str(APPS_DIR),
        "--host", "127.0.0.1", "--port", str(port), "--io", args.io, "--no-access-log",
    ]
    scenario = dataclasses.replace(SCENARIO, locust_users=args.users)
    prefix = workdir / "locust"
    samples: list[dict] = []
    server = start(server_command, server_cpus, server_log)
    try:
        try:
            wait_until_serving(server, port, scenario.probe(), server_log, "dbridge-asgi")
        except BenchError as error:
            print(f"soak: {error}", file=sys.stderr)
            return 2
        locust = subprocess.Popen(
            locust_command(scenario, port, args.minutes * 60, load_cpus, prefix),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        try:
            started = time.monotonic()
            while locust.poll() is None and server.poll() is None:
                time.sleep(SAMPLE_SECONDS - (time.monotonic() - started) % SAMPLE_SECONDS)
                elapsed = time.monotonic() - started
                if server.poll() is not None or elapsed > args.minutes * 60 + 1:
                    break
                # server.pid is the server's own: taskset execs it.
                samples.append(
                    {"minute": elapsed / 60, "rss": rss_bytes(server.pid), "fds": open_fds(server.pid)}
                )
                print(
                    f"soak: {elapsed / 60:5.1f} min  RSS {samples[-1]['rss'] / 2**20:7.1f} MiB  "
                    f"fds {samples[-1]['fds']}",
                    flush=True,
                )
            try:
                output, _ = locust.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                output = "(locust did not finish within 120 s of the end of the run)"
        finally:
            stop(locust)
        server_died = server.poll() is not None
    finally:
        stop(server)

    if server_died:
        print(f"soak: FAIL: the server died (exit code {server.returncode}):\n{tail(server_log, 40)}",
              file=sys.stderr)
        return 1
    try:
        totals = locust_totals(prefix, output)
    except BenchError as error:
        print(f"soak: {error}", file=sys.stderr)
        return 2
    if sum(s["minute"] >= warmup for s in samples) < 3:
        print(f"soak: locust ended after {len(samples)} samples:\n{output[-3000:]}", file=sys.stderr)
        return 2
    figures, verdict = judge(samples, warmup, int(totals["Request Count"]), args.minutes * 60,
                             locust_failures(prefix), args.max_slope, args.users)
    report = {"minutes": args.minutes, "warmup_minutes": warmup, "io": args.io, "users": args.users,
              "server_cpus": server_cpus, "load_cpus": load_cpus, **figures, "samples": samples}
    print(
        f"soak: {figures['requests']} requests ({figures['requests_per_second']:.0f}/s) from "
        f"{args.users} locust users, {figures['failed_requests']} failed "
        "(outside 2xx/3xx or a connection error)"
    )
    print(
        f"soak: RSS slope after {warmup:.1f} min warm-up: {figures['rss_slope_mib_per_minute']:+.3f} MiB/min "
        f"({figures['rss_slope_bytes_per_request']:+.2f} bytes/request), limit {args.max_slope} MiB/min; "
        f"fd growth {figures['fd_growth']}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    for failure in verdict:
        print(f"soak: FAIL: {failure}", file=sys.stderr)
    if not verdict:
        print("soak: pass")
    return 1 if verdict else 0


if __name__ == "__main__":
    sys.exit(main())
