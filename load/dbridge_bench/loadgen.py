"""Load generators: wrk for throughput and latency percentiles (a Lua script per scenario
writes the figures wrk's text report lacks: p90, p99.9, the error kinds), dbridge-wsload
(load/wsload/, built and shipped with the package) for WebSocket echo, locust (headless,
FastHttpUser, CSV stats) for mixes with think time, and a Python client that holds
thousands of idle keep-alive connections to measure memory per connection."""

from __future__ import annotations

import csv
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from .procs import BenchError, rss_bytes, stop
from .scenarios import LOCUSTFILE, Scenario

REPORT_TAG = "DBRIDGE-BENCH"


def _lua_string(data: bytes) -> str:
    # A Lua string literal with every byte escaped as \ddd: safe for any body.
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def wrk_script(scenario: Scenario) -> str:
    lines = [f'wrk.method = "{scenario.method}"']
    if scenario.body:
        lines.append(f"wrk.body = {_lua_string(scenario.body)}")
    for name, value in scenario.headers:
        lines.append(f"wrk.headers[{_lua_string(name.encode())}] = {_lua_string(value.encode())}")
    if not scenario.keep_alive:
        lines.append('wrk.headers["Connection"] = "close"')
    if scenario.pipeline > 1:
        lines += [
            "init = function(args)",
            "    local r = {}",
            f"    for i = 1, {scenario.pipeline} do r[i] = wrk.format() end",
            "    batch = table.concat(r)",
            "end",
            "request = function() return batch end",
        ]
    lines += [
        "done = function(summary, latency, requests)",
        "    local e = summary.errors",
        f'    io.write(string.format("{REPORT_TAG} %d %d %d %d %d %d %d %d %d %d\\n",',
        "        summary.requests, summary.duration,",
        "        latency:percentile(50), latency:percentile(90), latency:percentile(99),",
        "        latency:percentile(99.9), e.connect, e.read + e.write, e.status, e.timeout))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def run_wrk(scenario: Scenario, port: int, duration: float, cpus: str, workdir: Path,
            started: list[subprocess.Popen]) -> dict:
    script = workdir / f"{scenario.name}.lua"
    script.write_text(wrk_script(scenario))
    command = ["taskset", "-c", cpus, "wrk", "-t1", f"-c{scenario.connections}", f"-d{max(1, round(duration))}s",
               "-s", str(script), f"http://127.0.0.1:{port}{scenario.path}"]
    output, _ = run_tool("wrk", command, duration, started, merge_stderr=True)
    return parse_wrk(output, scenario)


def run_tool(name: str, command: list[str], duration: float, started: list[subprocess.Popen],
             merge_stderr: bool = False) -> tuple[str, str]:
    """Runs a load generator to its end (at most a minute past the duration); its output
    and error text. A non-zero exit is a BenchError with both."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, text=True,
                               start_new_session=True)
    started.append(process)
    try:
        output, errors = process.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{name} did not finish within {duration + 60:.0f} s") from None
    finally:
        stop(process)
    if process.returncode != 0:
        raise BenchError(f"{name} exited with {process.returncode}:\n{output}{errors or ''}")
    return output, errors or ""


def parse_wrk(output: str, scenario: Scenario) -> dict:
    for line in output.splitlines():
        if line.startswith(REPORT_TAG):
            values = [int(v) for v in line.split()[1:]]
            requests, duration_us, p50, p90, p99, p999, connect, io_errors, status, timeouts = values
            break
    else:
        raise BenchError(f"wrk printed no figures:\n{output}")
    seconds = duration_us / 1e6
    # With pipelining wrk times a batch, not a request: its percentiles are per batch.
    return {
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds if seconds else 0.0,
        "p50_us": p50, "p90_us": p90, "p99_us": p99, "p999_us": p999,
        "latency_per": "batch" if scenario.pipeline > 1 else "request",
        "errors": connect + io_errors + timeouts,
        # wrk counts responses with status > 399 as "status" errors.
        "non_2xx": status,
    }


WSLOAD_TAG = "DBRIDGE-WSLOAD"
WSLOAD_ERRORS = ("connect", "handshake", "mismatch", "closed", "protocol", "timeout")


def wsload_path() -> str:
    """dbridge-wsload: $DBRIDGE_WSLOAD, else the one installed beside this package (the
    wheel puts it there), else on PATH."""
    override = os.environ.get("DBRIDGE_WSLOAD")
    if override:
        return override
    beside = Path(__file__).resolve().parent / "dbridge-wsload"
    if beside.exists():
        return str(beside)
    found = shutil.which("dbridge-wsload")
    if found is None:
        raise BenchError("dbridge-wsload is not installed: it is built with the package (pip install "
                         "dbridge-asgi) or by the dev tools build (DBRIDGE_BUILD_TOOLS); or set DBRIDGE_WSLOAD")
    return found


def run_ws(scenario: Scenario, port: int, duration: float, cpus: str,
           started: list[subprocess.Popen]) -> dict:
    command = ["taskset", "-c", cpus, wsload_path(), "--port", str(port), "--path", scenario.path,
               "--connections", str(scenario.connections), "--size", str(scenario.message_size),
               "--in-flight", str(scenario.in_flight), "--duration", str(duration)]
    # Beyond the duration: up to 10 s of handshakes, 2 s for the last echoes, 2 s to close.
    output, errors = run_tool("dbridge-wsload", command, duration, started)
    figures = parse_wsload(output)
    if figures["errors"]:
        figures["error_detail"] = errors.strip()  # the first error of each kind, described
    return figures


def parse_wsload(output: str) -> dict:
    """The figures of dbridge-wsload's report line; "requests" are echoed messages."""
    for line in output.splitlines():
        if line.startswith(WSLOAD_TAG + " "):
            values = dict(item.split("=", 1) for item in line.split()[1:])
            break
    else:
        raise BenchError(f"dbridge-wsload printed no figures:\n{output}")
    try:
        messages, seconds = int(values["messages"]), float(values["seconds"])
        percentiles = {key: float(values[key]) for key in ("p50_us", "p90_us", "p99_us", "p999_us")}
        errors = {kind: int(values[kind]) for kind in WSLOAD_ERRORS}
    except (KeyError, ValueError) as e:
        raise BenchError(f"dbridge-wsload's report line is not understood ({e}):\n{output}") from None
    return {
        "requests": messages,
        "seconds": seconds,
        "rps": messages / seconds if seconds else 0.0,
        # -1: no message completed, so no latency.
        **{key: (value if value >= 0 else None) for key, value in percentiles.items()},
        "latency_per": "message",
        "errors": sum(errors.values()),
        "non_2xx": 0,
        "ws_errors": errors,
    }


def locust_command(scenario: Scenario, port: int, duration: float, cpus: str, prefix: Path) -> list[str]:
    """locust headless on the locustfile's scenario.locust_user class, pinned to cpus, its
    CSV files (stats, failures) written under `prefix`."""
    users = str(scenario.locust_users)
    return ["taskset", "-c", cpus, sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", users, "-r", users, "-t", f"{max(1, round(duration))}s",
            "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix), "--only-summary",
            "--loglevel", "WARNING", scenario.locust_user]


def locust_totals(prefix: Path, output: str = "") -> dict:
    """The Aggregated row of locust's `<prefix>_stats.csv`."""
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        raise BenchError(f"locust wrote no statistics:\n{output[-3000:]}")
    with open(stats, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("Name") == "Aggregated"]
    if not rows:
        raise BenchError(f"locust statistics have no Aggregated row:\n{stats.read_text()[:2000]}")
    return rows[0]


def locust_failures(prefix: Path) -> list[dict]:
    """The rows of locust's `<prefix>_failures.csv`: method, name, error, occurrences. locust
    counts as a failure every status outside 2xx/3xx and every connection error."""
    failures = Path(f"{prefix}_failures.csv")
    if not failures.exists():
        return []
    with open(failures, newline="") as f:
        return [
            {"method": row["Method"], "name": row["Name"], "error": row["Error"],
             "occurrences": int(row["Occurrences"])}
            for row in csv.DictReader(f)
        ]


def run_locust(scenario: Scenario, port: int, duration: float, cpus: str, workdir: Path,
               started: list[subprocess.Popen]) -> dict:
    prefix = workdir / f"locust-{scenario.name}-{port}"
    process = subprocess.Popen(locust_command(scenario, port, duration, cpus, prefix), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    started.append(process)
    try:
        output, _ = process.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"locust did not finish within {duration + 60:.0f} s") from None
    finally:
        stop(process)
    row = locust_totals(prefix, output)

    def ms(column: str) -> float | None:
        value = row.get(column, "N/A")
        return None if value in ("N/A", "") else float(value) * 1000.0

    requests = int(row["Request Count"])
    return {
        "requests": requests,
        "seconds": duration,
        "rps": float(row["Requests/s"]),
        "p50_us": ms("50%"), "p90_us": ms("90%"), "p99_us": ms("99%"), "p999_us": ms("99.9%"),
        "latency_per": "request",
        "errors": int(row["Failure Count"]),
        "non_2xx": 0,  # locust counts non-2xx as failures
    }


def raise_fd_limit(wanted: int) -> None:
    """The soft descriptor limit up to `wanted` (children started later inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run_idle(scenario: Scenario, port: int, server_pid: int) -> dict:
    """Open scenario.idle_connections keep-alive connections, one request each, and hold
    them: the server's RSS growth divided by the connections is its memory per connection."""
    request = f"GET {scenario.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    warm = [_open(port, request) for _ in range(64)]
    time.sleep(0.5)
    before = rss_bytes(server_pid)
    held: list[socket.socket] = []
    errors = 0
    started = time.monotonic()
    try:
        for _ in range(scenario.idle_connections):
            try:
                held.append(_open(port, request))
            except OSError:
                errors += 1
        time.sleep(1.0)
        # Every connection must still be open and served: one more request on a sample.
        alive = sum(_still_served(s, request) for s in held[:: max(1, len(held) // 100)])
        after = rss_bytes(server_pid)
    finally:
        for s in held + warm:
            s.close()
    sample = len(held[:: max(1, len(held) // 100)])
    return {
        "requests": len(held),
        "seconds": time.monotonic() - started,
        "rps": 0.0,
        "p50_us": None, "p90_us": None, "p99_us": None, "p999_us": None,
        "latency_per": "request",
        "errors": errors + (sample - alive),
        "non_2xx": 0,
        "connections_held": len(held),
        "rss_bytes_per_connection": (after - before) / max(1, len(held)),
    }


def _open(port: int, request: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(request)
    _read_response(s)
    return s


def _still_served(s: socket.socket, request: bytes) -> bool:
    try:
        s.sendall(request)
        return _read_response(s).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed")
        body += chunk
    return head
