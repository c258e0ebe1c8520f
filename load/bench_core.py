#!/usr/bin/env python3
"""The C-only floor: the core's responder (io_uring and epoll) next to nginx.

Each server answers "Hello, world!" to every request. One server at a time is pinned to
CPU 0 and wrk to CPU 1; every server gets the same two loads, in turn (A B C A B C ...,
`--rounds` times):

  plain        wrk -t1 -c64 -d DURATION --latency
  pipelined16  the same with 16 requests written per send (a wrk Lua script); wrk counts
               every response, so requests/s stays right, while its latency figures are
               per batch of 16 and unreliable (wrk 4.1 often prints p99 as 0: shown as n/a)

For each run we read requests/s and the latency percentiles from wrk, and the server's
CPU time (utime + stime from /proc/PID/stat, before and after the run) divided by the
requests completed: CPU microseconds per request, the figure that does not depend on
how fast the load generator is. The table gives the median over the rounds, and the
ratio of CPU per request to nginx's in the same mode.

    python3 load/bench_core.py --responder build/cpp/dbridge-responder [--duration 10]
                               [--rounds 2] [--json results.json]

Standard library only (Python 3.9+). Needs wrk, taskset, nginx (Debian: wrk, util-linux,
nginx-light) and two CPUs. Every process it starts is stopped by its PID, also on
Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SERVER_CPU = "0"
LOAD_CPU = "1"
CONNECTIONS = 64
PIPELINE_DEPTH = 16
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
HELLO = b"Hello, world!"

PIPELINE_SCRIPT = f"""\
-- {PIPELINE_DEPTH} requests per send; wrk counts each response.
init = function(args)
    local r = {{}}
    for i = 1, {PIPELINE_DEPTH} do
        r[i] = wrk.format()
    end
    req = table.concat(r)
end

request = function()
    return req
end
"""

NGINX_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    keepalive_requests 1000000;
{temp_paths}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type text/plain;
            return 200 "Hello, world!";
        }}
    }}
}}
"""

# Temp paths default to /var/lib/nginx; set them all inside the run's directory so a run
# as root touches nothing outside it. A module left out of the build has no directive.
NGINX_TEMP_PATHS = {
    "client_body_temp_path": None,
    "proxy_temp_path": "http_proxy",
    "fastcgi_temp_path": "http_fastcgi",
    "uwsgi_temp_path": "http_uwsgi",
    "scgi_temp_path": "http_scgi",
}


class BenchError(Exception):
    pass


@dataclass
class ServerSpec:
    name: str
    kind: str  # "responder" or "nginx"
    io: str | None = None


@dataclass
class RunResult:
    server: str
    mode: str
    round: int
    requests: int
    seconds: float
    requests_per_second: float
    p50_us: float | None
    p99_us: float | None
    cpu_seconds: float
    cpu_us_per_request: float
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0


# ---- processes -----------------------------------------------------------------------


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, wait, SIGKILL as the fallback; by PID, never by name."""
    if process.poll() is not None:
        return
    try:
        os.kill(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLK_TCK


def get_hello(port: int) -> bytes:
    """One request over a fresh connection; returns the raw response."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def wait_until_serving(process: subprocess.Popen, port: int, log_path: Path, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(
                f"{name} exited with {process.returncode} before serving:\n{log_path.read_text()}"
            )
        try:
            response = get_hello(port)
        except OSError:
            time.sleep(0.05)
            continue
        # Measure only a server that answers what we think it answers.
        if not response.startswith(b"HTTP/1.1 200 ") or not response.endswith(b"\r\n\r\n" + HELLO):
            raise BenchError(f"{name} answered something else: {response[:300]!r}")
        return
    raise BenchError(f"{name} did not serve within {START_TIMEOUT} s:\n{log_path.read_text()}")


def nginx_config(workdir: Path, port: int, nginx: str) -> str:
    build = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False).stderr
    lines = []
    for directive, module in NGINX_TEMP_PATHS.items():
        if module is None or f"--without-{module}_module" not in build:
            path = workdir / directive.replace("_temp_path", "_temp")
            lines.append(f"    {directive} {path};")
    return NGINX_CONFIG.format(dir=workdir, port=port, temp_paths="\n".join(lines) + "\n")


def start_server(spec: ServerSpec, args: argparse.Namespace, workdir: Path, started: list[subprocess.Popen]):
    port = free_port()
    log_path = workdir / f"{spec.name}.log"
    if spec.kind == "responder":
        command = [args.responder, "--host", "127.0.0.1", "--port", str(port), "--io", spec.io]
    else:
        config = workdir / "nginx.conf"
        config.write_text(nginx_config(workdir, port, args.nginx))
        command = [args.nginx, "-p", str(workdir), "-c", str(config)]
    with open(log_path, "wb") as log:
        # A session of its own: Ctrl+C reaches only us, and we stop the server in order.
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *command],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    started.append(process)  # taskset execs the server: this PID is the server's
    wait_until_serving(process, port, log_path, spec.name)
    return process, port


# ---- wrk -----------------------------------------------------------------------------

UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0, "m": 60_000_000.0}


def parse_wrk(output: str) -> dict:
    def find(pattern: str) -> re.Match:
        m = re.search(pattern, output, re.MULTILINE)
        if not m:
            raise BenchError(f"wrk output without {pattern!r}:\n{output}")
        return m

    done = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),")
    percentiles = {}
    for pct in ("50", "99"):
        m = find(rf"^\s*{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$")
        value = float(m.group(1)) * UNITS_US[m.group(2)]
        # wrk prints 0 when its histogram cannot answer (seen at p99 with pipelining).
        percentiles[pct] = value if value > 0 else None
    errors = {}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        errors = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": int(done.group(1)),
        "seconds": float(done.group(2)) * UNITS_US[done.group(3)] / 1_000_000.0,
        "requests_per_second": float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        "p50_us": percentiles["50"],
        "p99_us": percentiles["99"],
        "socket_errors": errors,
        "non_2xx": int(m.group(1)) if m else 0,
    }


def run_wrk(
    port: int, duration: int, script: Path | None, started: list[subprocess.Popen], path: str = "/"
) -> dict:
    command = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(f"http://127.0.0.1:{port}{path}")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    started.append(process)
    try:
        output, _ = process.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {duration + 60} s")
    finally:
        stop_process(process)
    if process.returncode != 0:
        raise BenchError(f"wrk exited with {process.returncode}:\n{output}")
    return parse_wrk(output)


def measure(
    spec: ServerSpec,
    mode: str,
    rnd: int,
    server: subprocess.Popen,
    port: int,
    args: argparse.Namespace,
    script: Path | None,
    started: list[subprocess.Popen],
) -> RunResult:
    before = cpu_seconds(server.pid)
    wrk = run_wrk(port, args.duration, script, started)
    after = cpu_seconds(server.pid)
    if server.poll() is not None:
        raise BenchError(f"{spec.name} exited with {server.returncode} during the {mode} run")
    if wrk["requests"] == 0:
        raise BenchError(f"{spec.name} {mode}: wrk completed no request")
    cpu = after - before
    return RunResult(
        server=spec.name,
        mode=mode,
        round=rnd,
        cpu_seconds=cpu,
        cpu_us_per_request=cpu * 1_000_000.0 / wrk["requests"],
        **wrk,
    )


# ---- report --------------------------------------------------------------------------


def median_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def medians(results: list[RunResult], servers: list[ServerSpec], modes: list[str]) -> list[dict]:
    rows = []
    for mode in modes:
        nginx_cpu = None
        mode_rows = []
        for spec in servers:
            runs = [r for r in results if r.server == spec.name and r.mode == mode]
            if not runs:
                continue
            row = {
                "server": spec.name,
                "mode": mode,
                "runs": len(runs),
                "requests_per_second": statistics.median(r.requests_per_second for r in runs),
                "p50_us": median_or_none([r.p50_us for r in runs]),
                "p99_us": median_or_none([r.p99_us for r in runs]),
                "cpu_us_per_request": statistics.median(r.cpu_us_per_request for r in runs),
            }
            if spec.kind == "nginx":
                nginx_cpu = row["cpu_us_per_request"]
            mode_rows.append(row)
        for row in mode_rows:
            row["cpu_ratio_to_nginx"] = row["cpu_us_per_request"] / nginx_cpu if nginx_cpu else None
        rows += mode_rows
    return rows


def format_latency(us: float | None) -> str:
    if us is None:
        return "n/a"
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| server | mode | req/s | p50 | p99 | CPU µs/request | CPU/request vs nginx |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio = row["cpu_ratio_to_nginx"]
        lines.append(
            f"| {row['server']} | {row['mode']} | {row['requests_per_second']:,.0f} | "
            f"{format_latency(row['p50_us'])} | {format_latency(row['p99_us'])} | "
            f"{row['cpu_us_per_request']:.2f} | {'' if ratio is None else f'{ratio:.2f}×'} |"
        )
    return "\n".join(lines)


def environment() -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False).stdout
    return {
        "kernel": platform.release(),
        "cpu": cpu_model,
        "cpus": os.cpu_count(),
        "wrk": wrk_version.splitlines()[0] if wrk_version else "",
        "python": platform.python_version(),
    }


# ---- main ----------------------------------------------------------------------------


def check_tools(args: argparse.Namespace) -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise BenchError(f"missing tools: {', '.join(missing)} (Debian: apt-get install wrk util-linux)")
    if not (os.path.isfile(args.nginx) and os.access(args.nginx, os.X_OK)):
        raise BenchError(f"nginx not found at {args.nginx} (Debian: apt-get install nginx-light)")
    if not (os.path.isfile(args.responder) and os.access(args.responder, os.X_OK)):
        raise BenchError(f"responder not found at {args.responder} (make build-cpp)")
    available = os.sched_getaffinity(0)
    if int(SERVER_CPU) not in available or int(LOAD_CPU) not in available:
        raise BenchError(f"needs CPUs {SERVER_CPU} and {LOAD_CPU}; this process may use {sorted(available)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--responder", default="build/cpp/dbridge-responder", help="the dbridge-responder binary"
    )
    parser.add_argument("--nginx", default="/usr/sbin/nginx", help="the nginx binary")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of A B C (default 2); medians are reported"
    )
    parser.add_argument("--json", metavar="FILE", help="also write every run and the medians here")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.rounds < 1:
        parser.error("--duration and --rounds must be at least 1")
    args.responder = os.path.abspath(args.responder)
    return args


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM and SIGINT both unwind through the finally below, which stops every process.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    servers = [
        ServerSpec("dbridge-responder (io_uring)", "responder", "uring"),
        ServerSpec("dbridge-responder (epoll)", "responder", "epoll"),
        ServerSpec("nginx", "nginx"),
    ]
    modes = ["plain", f"pipelined{PIPELINE_DEPTH}"]
    started: list[subprocess.Popen] = []
    results: list[RunResult] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-core-"))
    try:
        check_tools(args)
        script = workdir / "pipeline.lua"
        script.write_text(PIPELINE_SCRIPT)
        for rnd in range(1, args.rounds + 1):
            for spec in servers:
                server, port = start_server(spec, args, workdir, started)
                try:
                    for mode in modes:
                        print(
                            f"round {rnd}/{args.rounds}: {spec.name}, {mode}, {args.duration} s ...",
                            file=sys.stderr,
                            flush=True,
                        )
                        result = measure(
                            spec, mode, rnd, server, port, args, script if mode != "plain" else None, started
                        )
                        results.append(result)
                        print(
                            f"    {result.requests_per_second:,.0f} req/s, "
                            f"{result.cpu_us_per_request:.2f} CPU µs/request",
                            file=sys.stderr,
                            flush=True,
                        )
                finally:
                    stop_process(server)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for process in started:
            stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)

    rows = medians(results, servers, modes)
    env = environment()
    print(
        f"\nC-only floor: server on CPU {SERVER_CPU}, wrk -t1 -c{CONNECTIONS} on CPU {LOAD_CPU}, "
        f"{args.duration} s per run, median of {args.rounds} round(s); "
        f"{env['cpu']}, Linux {env['kernel']}, {env['wrk']}\n"
    )
    print(markdown_table(rows))
    print(
        f"\nLatency in pipelined{PIPELINE_DEPTH} is wrk's time for a batch of {PIPELINE_DEPTH}, "
        "not of one request, and wrk's histogram is unreliable under pipelining: compare it only "
        "between servers, never with plain. n/a: wrk printed 0 for that percentile."
    )
    troubled = [r for r in results if r.non_2xx or any(r.socket_errors.values())]
    for r in troubled:
        print(
            f"\nwarning: {r.server} {r.mode} round {r.round}: socket errors {r.socket_errors}, "
            f"non-2xx responses {r.non_2xx}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "environment": env,
                    "duration": args.duration,
                    "rounds": args.rounds,
                    "connections": CONNECTIONS,
                    "pipeline_depth": PIPELINE_DEPTH,
                    "medians": rows,
                    "runs": [asdict(r) for r in results],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
