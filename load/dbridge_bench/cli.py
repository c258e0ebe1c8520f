"""`dbridge-asgi bench`: run an app under each server in turn and compare."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import gate as gates
from . import loadgen, report, servers
from .procs import BenchError, cpu_seconds, free_port, rss_bytes, start, stop, wait_until_serving
from .scenarios import APPS_DIR, SHIPPED, Scenario, shipped

EPILOG = f"""\
shipped scenarios (--scenario, comma-separated; their apps are in load/dbridge_bench/apps):
{chr(10).join(f"  {s.name:14} {s.description}" for s in SHIPPED.values())}

WebSocket scenarios (ws_*): dbridge-wsload keeps each connection's message on the wire
and counts echoes; in every figure a "request" is one message sent and echoed.

gates (--gate, repeatable): [METRIC:]A/B OP FLOOR[@SCENARIO]
  metrics: {", ".join(gates.METRICS)} (default rps)
  e.g. --gate "dbridge-asgi/uvicorn>=1.5" --gate "cpu:dbridge-asgi/uvicorn<=0.6@raw"
       --gate "dbridge-asgi/uvicorn>=2@ws_echo" --gate "dbridge-asgi/granian>=1@ws_echo"
exit status: 0 all gates passed, 1 a gate failed, 2 the benchmark could not run.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dbridge-asgi bench",
        description="Run an ASGI app under dbridge-asgi, uvicorn and granian in turn, pinned, and compare.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("app", nargs="?", help="your app as module:attribute (omit to run the shipped scenarios' apps)")
    p.add_argument("--app-dir", default=".", help="directory to import APP from (default: .)")
    p.add_argument("--scenario", help="shipped scenario(s); with APP, their request shapes against your app")
    p.add_argument("--name", default="custom", help="name of the scenario built from --path etc.")
    p.add_argument("--path", default="/", help="request target (default: /)")
    p.add_argument("--method", default="GET")
    p.add_argument("--body-file", type=Path, help="request body, read from this file")
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--pipeline", type=int, default=1, help="requests written per send")
    p.add_argument("--no-keepalive", action="store_true", help="a new connection per request")
    p.add_argument("--websocket", action="store_true",
                   help="the scenario from --path etc. is a WebSocket echo: APP echoes messages at --path")
    p.add_argument("--message-size", type=int, help="WebSocket scenarios: bytes per message (default: 1024)")
    p.add_argument("--in-flight", type=int,
                   help="WebSocket scenarios: messages in flight per connection (default: 1)")
    p.add_argument("--idle-connections", type=int, default=10_000,
                   help="connections the idle_10k scenario holds (default: 10000)")
    p.add_argument("--servers", help="comma-separated built-in servers (default: dbridge-asgi,uvicorn and "
                   "granian when installed); dbridge-asgi:ARGS is a variant with extra options; 'none': only --server ones")
    p.add_argument("--server", action="append", default=[], metavar="NAME[@SCENARIOS]=COMMAND",
                   help="another server: a command with {app}, {app_dir}, {host}, {port}; "
                   "@raw,pipelined16 limits it to those scenarios")
    p.add_argument("--baseline", default="uvicorn", help="the server ratios are taken to (default: uvicorn)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per run (default: 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each run (default: 2)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds (default: 2)")
    p.add_argument("--server-cpus", default="0", help="CPUs for the server (taskset list; default: 0)")
    p.add_argument("--load-cpus", default=None, help="CPUs for the load generator (default: the others)")
    p.add_argument("--gate", action="append", default=[], help="a ratio that must hold (see below)")
    p.add_argument("--json", type=Path, help="write every run and the summary as JSON")
    p.add_argument("--markdown", type=Path, help="write the summary table as Markdown")
    p.add_argument("--png", type=Path, help="write a chart (needs matplotlib)")
    return p


def _cpu_list(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def scenarios_from(args: argparse.Namespace) -> list[Scenario]:
    if args.scenario:
        chosen = shipped(args.scenario)
        for s in chosen:
            s.idle_connections = args.idle_connections
            _message_options(s, args)
            if args.app:
                s.app = None  # their request shapes, the user's app
        return chosen
    if not args.app:
        raise ValueError("give APP (module:attribute) or --scenario")
    headers = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"bad --header {h!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    scenario = Scenario(args.name, "from the command line", None, path=args.path, method=args.method.upper(),
                        body=args.body_file.read_bytes() if args.body_file else b"", headers=headers,
                        connections=args.connections, pipeline=args.pipeline,
                        keep_alive=not args.no_keepalive, kind="ws" if args.websocket else "wrk")
    _message_options(scenario, args)
    return [scenario]


def _message_options(scenario: Scenario, args: argparse.Namespace) -> None:
    if args.message_size is not None:
        if args.message_size < 0:
            raise ValueError("--message-size must be 0 or more")
        scenario.message_size = args.message_size
    if args.in_flight is not None:
        if args.in_flight < 1:
            raise ValueError("--in-flight must be 1 or more")
        scenario.in_flight = args.in_flight


def servers_from(args: argparse.Namespace) -> list[servers.Server]:
    if args.servers == "none":
        names = []  # only the --server commands
    elif args.servers:
        names = [n.strip() for n in args.servers.split(",") if n.strip()]
    else:
        names = ["dbridge-asgi", "uvicorn"]
        try:
            servers.builtin("granian")
            names.append("granian")
        except BenchError:
            print("granian is not installed: comparing without it", file=sys.stderr)
    result = [servers.parse(n) for n in names] + [servers.parse(s) for s in args.server]
    if not result:
        raise ValueError("no server to run: --servers none needs at least one --server")
    if len({s.name for s in result}) != len(result):
        raise ValueError("two servers have the same name")
    return result


class PeakRss:
    """Samples the server tree's RSS while a run goes on; the peak is the figure."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(0.25)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


def one_run(server: servers.Server, scenario: Scenario, args: argparse.Namespace, app: str, app_dir: Path,
            workdir: Path, started: list[subprocess.Popen], rnd: int) -> dict:
    port = free_port()
    command = server.command(app, app_dir, port, servers.scenario_args(server, scenario.kind))
    log = workdir / f"{server.name.replace('/', '_')}-{scenario.name}-{rnd}.log"
    process = start(command, args.server_cpus, log, cwd=app_dir)
    started.append(process)
    try:
        wait_until_serving(process, port, scenario.probe(), log, server.name)
        if scenario.kind == "wrk" and args.warmup > 0:
            loadgen.run_wrk(scenario, port, args.warmup, args.load_cpus, workdir, started)
        elif scenario.kind == "ws" and args.warmup > 0:
            loadgen.run_ws(scenario, port, args.warmup, args.load_cpus, started)
        before = cpu_seconds(process.pid)
        with PeakRss(process.pid) as rss:
            if scenario.kind == "idle":
                figures = loadgen.run_idle(scenario, port, process.pid)
            elif scenario.kind == "locust":
                figures = loadgen.run_locust(scenario, port, args.duration, args.load_cpus, workdir, started)
            elif scenario.kind == "ws":
                figures = loadgen.run_ws(scenario, port, args.duration, args.load_cpus, started)
            else:
                figures = loadgen.run_wrk(scenario, port, args.duration, args.load_cpus, workdir, started)
        after = cpu_seconds(process.pid)
        if process.poll() is not None:
            raise BenchError(f"{server.name} exited with {process.returncode} during {scenario.name}")
    finally:
        stop(process)
    if figures["requests"] == 0:
        raise BenchError(f"{server.name} {scenario.name}: no request completed; server log {log}")
    cpu = after - before
    return {
        "scenario": scenario.name, "server": server.name, "round": rnd, "command": shlex.join(command),
        **figures,
        "cpu_seconds": cpu,
        "cpu_us_per_request": cpu * 1e6 / figures["requests"],
        "cpu_seconds_per_1000": cpu * 1000 / figures["requests"],
        "peak_rss_mb": rss.peak / 2**20,
    }


def environment(server_list: list[servers.Server]) -> dict:
    versions = {}
    for package in ("dbridge-asgi", "uvicorn", "granian", "uvloop", "httptools", "fastapi", "locust"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    wrk = []
    if shutil.which("wrk"):  # a run of WebSocket scenarios needs no wrk
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    try:
        wsload = loadgen.wsload_path()
    except BenchError:
        wsload = None
    return {"python": sys.version.split()[0], "kernel": platform.release(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "versions": versions, "wrk": wrk[0] if wrk else None, "wsload": wsload,
            "servers": {s.name: shlex.join(s.template) for s in server_list}}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        checks = [gates.parse(g) for g in args.gate]
        scenario_list = scenarios_from(args)
        server_list = servers_from(args)
        server_cpus = _cpu_list(args.server_cpus)
        load = _cpu_list(args.load_cpus) if args.load_cpus else set(os.sched_getaffinity(0)) - server_cpus
        if not load:
            raise ValueError(f"no CPU left for the load generator (server on {args.server_cpus})")
        args.load_cpus = ",".join(str(c) for c in sorted(load))
    except (ValueError, OSError, BenchError) as e:
        print(f"dbridge-asgi bench: {e}", file=sys.stderr)
        return 2
    # This process (the idle-connection client, the RSS sampler) stays off the server's CPUs.
    os.sched_setaffinity(0, load)
    if any(s.kind == "idle" for s in scenario_list):
        loadgen.raise_fd_limit(max(s.idle_connections for s in scenario_list) + 1024)
    if any(s.kind == "ws" for s in scenario_list):
        loadgen.raise_fd_limit(max(s.connections for s in scenario_list) + 1024)  # dbridge-wsload inherits it
    runs: list[dict] = []
    started: list[subprocess.Popen] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dbridge-bench-") as tmp:
            for rnd in range(1, args.rounds + 1):
                for scenario in scenario_list:
                    app = scenario.app or args.app
                    app_dir = APPS_DIR if scenario.app else Path(args.app_dir).resolve()
                    for server in server_list:
                        if server.only is not None and scenario.name not in server.only:
                            continue
                        run = one_run(server, scenario, args, app, app_dir, Path(tmp), started, rnd)
                        runs.append(run)
                        unit = "msg" if scenario.kind == "ws" else "req"
                        print(f"round {rnd}  {scenario.name:13} {server.name:16} {run['rps']:>10,.0f} {unit}/s"
                              f"  {run['cpu_us_per_request']:8.2f} CPU µs/{unit}"
                              f"  p99 {report._latency(run['p99_us'])}"
                              f"  errors {run['errors'] + run['non_2xx']}", flush=True)
                        if run.get("error_detail"):
                            print(run["error_detail"], file=sys.stderr, flush=True)
    except BenchError as e:
        print(f"dbridge-asgi bench: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dbridge-asgi bench: interrupted", file=sys.stderr)
        return 2
    finally:
        for p in started:
            stop(p)
    baseline = args.baseline if any(s.name == args.baseline for s in server_list) else server_list[0].name
    summary = report.summarize(runs, baseline)
    outcomes = gates.check(checks, summary)
    print()
    print(report.table(summary, baseline))
    for outcome in outcomes:
        print(outcome.message, file=sys.stdout if outcome.passed else sys.stderr)
    if args.json:
        report.write_json(args.json, {
            "environment": environment(server_list),
            "settings": {"duration": args.duration, "warmup": args.warmup, "rounds": args.rounds,
                         "server_cpus": args.server_cpus, "load_cpus": args.load_cpus, "baseline": baseline},
            "runs": runs, "summary": summary,
            "gates": [{"gate": o.gate.text, "scenario": o.scenario, "ratio": o.ratio, "passed": o.passed,
                       "message": o.message} for o in outcomes],
        })
    if args.markdown:
        text = report.markdown(summary, baseline)
        if outcomes:
            text += "\n" + "\n".join(f"- {'✅' if o.passed else '❌'} {o.message}" for o in outcomes) + "\n"
        args.markdown.write_text(text)
    if args.png:
        try:
            report.write_png(args.png, summary)
        except RuntimeError as e:
            print(f"dbridge-asgi bench: {e}", file=sys.stderr)
            return 2
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
