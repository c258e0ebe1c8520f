"""`dbridge-asgi bench`: the harness end to end on short runs (real servers, real wrk,
locust and dbridge-wsload), and the gate's grammar and verdicts. Figures are not asserted,
only that they exist and that the gate turns a ratio into the right exit status and
message. dbridge-wsload, the WebSocket load generator, is also run alone against echo
endpoints that get it wrong: each failure must be reported under its kind."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from asgi_servers import ServerProcess, free_tcp_port, serve
from dbridge_bench import gate, loadgen
from dbridge_bench.procs import BenchError
from dbridge_bench.scenarios import SHIPPED, Scenario

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"
BENCH_TIMEOUT = 300

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
NO_WS_ERRORS = dict.fromkeys(loadgen.WSLOAD_ERRORS, 0)


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dbridge_asgi", "bench", *args],
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT,
    )


# ---- the gate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("dbridge-asgi/uvicorn>=1.5", ("rps", "dbridge-asgi", "uvicorn", ">=", 1.5, None)),
        ("cpu:dbridge-asgi/uvicorn<=0.6@raw", ("cpu", "dbridge-asgi", "uvicorn", "<=", 0.6, "raw")),
        (" p99:a/b < 1 ", ("p99", "a", "b", "<", 1.0, None)),
        ("dbridge-asgi:--loop ring/granian>.8", ("rps", "dbridge-asgi:--loop ring", "granian", ">", 0.8, None)),
    ],
)
def test_gate_expressions_are_parsed(text: str, expected: tuple) -> None:
    g = gate.parse(text)
    assert (g.metric, g.a, g.b, g.op, g.floor, g.scenario) == expected


@pytest.mark.parametrize("text", ["dbridge-asgi>=1", "a/b=1", "a/b>=", "speed:a/b>=1", "a/b>=x"])
def test_bad_gate_expressions_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="gate"):
        gate.parse(text)


SUMMARY = [
    {"scenario": "raw", "server": "a", "rps": 300.0, "cpu_us_per_request": 10.0, "p99_us": 900.0},
    {"scenario": "raw", "server": "b", "rps": 100.0, "cpu_us_per_request": 40.0, "p99_us": 1000.0},
    {"scenario": "get", "server": "a", "rps": 120.0, "cpu_us_per_request": 90.0, "p99_us": 5000.0},
    {"scenario": "get", "server": "b", "rps": 100.0, "cpu_us_per_request": 100.0, "p99_us": 4000.0},
]


def test_gate_verdicts_per_scenario() -> None:
    outcomes = gate.check([gate.parse("a/b>=1.5")], SUMMARY)
    verdicts = {o.scenario: (o.passed, round(o.ratio, 2)) for o in outcomes}
    assert verdicts == {"raw": (True, 3.0), "get": (False, 1.2)}
    failed = next(o for o in outcomes if not o.passed)
    assert "get" in failed.message and "1.200" in failed.message and ">= 1.5" in failed.message


def test_gate_on_cpu_and_latency_and_one_scenario() -> None:
    assert all(o.passed for o in gate.check([gate.parse("cpu:a/b<=0.9")], SUMMARY))
    outcomes = gate.check([gate.parse("p99:a/b<=1@get")], SUMMARY)
    assert [(o.scenario, o.passed) for o in outcomes] == [("get", False)]


def test_a_gate_that_matches_nothing_fails() -> None:
    (outcome,) = gate.check([gate.parse("a/granian>=1")], SUMMARY)
    assert not outcome.passed and "no figures" in outcome.message


# ---- the load generator's script and report ---------------------------------------------


def test_wrk_script_escapes_the_body_and_reports_percentiles() -> None:
    scenario = Scenario("t", "", None, method="POST", body=b'a"\n\x00]]', headers=[("X-A", "1")], pipeline=4)
    script = loadgen.wrk_script(scenario)
    assert 'wrk.method = "POST"' in script
    assert "\\97\\34\\10\\0\\93\\93" in script  # every byte escaped: quotes, NUL, ]] cannot break out
    assert "for i = 1, 4 do" in script and "latency:percentile(99.9)" in script


def test_wrk_report_line_is_parsed() -> None:
    output = "Running 1s test\n  ...\nDBRIDGE-BENCH 5000 2000000 100 200 300 400 1 2 3 4\n"
    figures = loadgen.parse_wrk(output, SHIPPED["raw"])
    assert figures["requests"] == 5000 and figures["rps"] == 2500.0
    assert (figures["p50_us"], figures["p999_us"]) == (100, 400)
    assert figures["errors"] == 1 + 2 + 4 and figures["non_2xx"] == 3


def test_wsload_report_line_is_parsed() -> None:
    output = ("DBRIDGE-WSLOAD messages=5000 seconds=2.000000 p50_us=100.5 p90_us=200.0 p99_us=300.0 "
              "p999_us=400.0 connections=64 connect=1 handshake=2 mismatch=3 closed=4 protocol=5 timeout=6\n")
    figures = loadgen.parse_wsload(output)
    assert figures["requests"] == 5000 and figures["rps"] == 2500.0
    assert (figures["p50_us"], figures["p999_us"]) == (100.5, 400.0)
    assert figures["ws_errors"] == {"connect": 1, "handshake": 2, "mismatch": 3, "closed": 4, "protocol": 5,
                                    "timeout": 6}
    assert figures["errors"] == 21 and figures["latency_per"] == "message"


def test_wsload_without_messages_has_no_latency_and_a_missing_line_is_an_error() -> None:
    figures = loadgen.parse_wsload("DBRIDGE-WSLOAD messages=0 seconds=0.001 p50_us=-1.0 p90_us=-1.0 "
                                   "p99_us=-1.0 p999_us=-1.0 connections=2 connect=2 handshake=0 mismatch=0 "
                                   "closed=0 protocol=0 timeout=0")
    assert figures["p50_us"] is None and figures["p99_us"] is None and figures["errors"] == 2
    with pytest.raises(BenchError, match="no figures"):
        loadgen.parse_wsload("segmentation fault\n")
    with pytest.raises(BenchError, match="not understood"):
        loadgen.parse_wsload("DBRIDGE-WSLOAD messages=1 seconds=1\n")


# ---- the WebSocket load generator alone ---------------------------------------------------


def test_wsload_ships_beside_the_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    # The package build installs it into dbridge_bench/: a wheel's user needs no dev tree.
    monkeypatch.delenv("DBRIDGE_WSLOAD", raising=False)
    path = Path(loadgen.wsload_path())
    assert path.parent == Path(loadgen.__file__).resolve().parent and path.name == "dbridge-wsload"
    usage = subprocess.run([str(path), "--no-such-option"], capture_output=True, text=True, timeout=10)
    assert usage.returncode == 2 and "--in-flight" in usage.stderr


@pytest.fixture(scope="module")
def misbehaving(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    yield from serve("dbridge-asgi", "ws_misbehaving_app:app", tmp_path_factory.mktemp("wsload"))


def wsload(port: int, path: str, *extra: str) -> tuple[dict, str]:
    result = subprocess.run(
        [loadgen.wsload_path(), "--port", str(port), "--path", path, "--connections", "4",
         "--duration", "0.5", *extra],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return loadgen.parse_wsload(result.stdout), result.stderr


@pytest.mark.parametrize("extra", [[], ["--binary", "--size", "70000", "--in-flight", "3"], ["--size", "0"]])
def test_wsload_counts_correct_echoes(misbehaving: ServerProcess, extra: list[str]) -> None:
    figures, stderr = wsload(misbehaving.port, "/echo", *extra)
    assert figures["ws_errors"] == NO_WS_ERRORS, stderr
    assert figures["requests"] > 0 and figures["p50_us"] > 0


@pytest.mark.parametrize(
    "path, kind, detail",
    [
        ("/reverse", "mismatch", "differs from the message sent"),
        ("/short", "mismatch", "has 1023 bytes, not 1024"),
        ("/bytes", "mismatch", "is a binary message"),
        ("/once", "closed", "the server sent close 1000"),
        ("/deny", "handshake", "403"),
        ("/silent", "timeout", "not echoed"),
    ],
)
def test_wsload_reports_a_misbehaving_server_by_kind(misbehaving: ServerProcess, path: str, kind: str,
                                                     detail: str) -> None:
    figures, stderr = wsload(misbehaving.port, path)
    assert figures["ws_errors"] == {**NO_WS_ERRORS, kind: 4}, stderr  # each of the 4 connections once
    assert f": {kind}: " in stderr and detail in stderr
    # Only /once echoes anything right: its first message on each connection.
    assert figures["requests"] == (4 if path == "/once" else 0)


class RawWebSocketServer:
    """What no ASGI server sends, from a plain socket: after reading the opening handshake
    each connection gets `answer(key)`, then the server holds it until the client closes."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        held = []
        try:
            while True:
                conn, _ = self.listener.accept()
                conn.settimeout(10)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        raise OSError("the client left before its handshake")
                    head += chunk
                key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                           if line.lower().startswith(b"sec-websocket-key:"))
                conn.sendall(self.answer(key))
                held.append(conn)
        except OSError:
            pass  # the listener was closed
        finally:
            for conn in held:
                conn.close()

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=10)


def switching(accept: bytes) -> bytes:
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def accept_for(key: bytes) -> bytes:  # RFC 6455 §4.2.2 item 5.4
    return base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[RawWebSocketServer]:
    server = RawWebSocketServer(request.param)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize(
    "raw_server, kind, detail",
    [
        (lambda key: switching(b"x" * 28), "handshake", "wrong Sec-WebSocket-Accept"),
        (lambda key: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "handshake",
         "HTTP/1.1 200 OK instead of 101"),
        # RSV1 set with no extension agreed (RFC 6455 §5.2).
        (lambda key: switching(accept_for(key)) + b"\xc1\x02hi", "protocol", "RSV bits"),
        # A masked server frame (§5.1).
        (lambda key: switching(accept_for(key)) + b"\x81\x82abcdAB", "protocol", "a mask"),
    ],
    indirect=["raw_server"],
    ids=["wrong-accept", "not-101", "rsv1", "masked"],
)
def test_wsload_reports_a_broken_handshake_or_frame(raw_server: RawWebSocketServer, kind: str,
                                                    detail: str) -> None:
    figures, stderr = wsload(raw_server.port, "/")
    assert figures["ws_errors"] == {**NO_WS_ERRORS, kind: 4}, stderr
    assert detail in stderr


def test_wsload_reports_refused_connections() -> None:
    figures, stderr = wsload(free_tcp_port(), "/")
    assert figures["ws_errors"] == {**NO_WS_ERRORS, "connect": 4} and "Connection refused" in stderr


# ---- end to end --------------------------------------------------------------------------


@needs_wrk
def test_two_servers_on_a_shipped_scenario_with_every_output(tmp_path: Path) -> None:
    result = bench(
        "--scenario", "raw", "--servers", "dbridge-asgi,uvicorn", "--duration", "1", "--warmup", "0",
        "--rounds", "1", "--gate", "dbridge-asgi/uvicorn>=0.01", "--json", str(tmp_path / "b.json"),
        "--markdown", str(tmp_path / "b.md"), "--png", str(tmp_path / "b.png"),
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "b.json").read_text())
    runs = {(r["scenario"], r["server"]): r for r in document["runs"]}
    assert set(runs) == {("raw", "dbridge-asgi"), ("raw", "uvicorn")}
    for run in runs.values():
        assert run["requests"] > 0 and run["errors"] == 0 and run["non_2xx"] == 0
        assert run["cpu_us_per_request"] > 0 and run["peak_rss_mb"] > 0 and run["p99_us"] > 0
    assert document["gates"][0]["passed"] is True
    assert "| raw | dbridge-asgi |" in (tmp_path / "b.md").read_text()
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "req/s ×" in result.stdout  # the terminal table


@needs_wrk
def test_a_failed_gate_exits_1_and_names_the_scenario_and_figures(tmp_path: Path) -> None:
    result = bench(
        "raw_app:app", "--app-dir", str(APPS_DIR), "--path", "/", "--name", "mine",
        "--servers", "dbridge-asgi,uvicorn", "--duration", "1", "--warmup", "0", "--rounds", "1",
        "--gate", "dbridge-asgi/uvicorn>=1000",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gate dbridge-asgi/uvicorn>=1000 FAILED in scenario mine" in result.stderr
    assert "req/s" in result.stderr


def test_usage_errors_exit_2() -> None:
    assert bench("--scenario", "raw", "--gate", "nonsense").returncode == 2
    result = bench("--scenario", "no_such_scenario")
    assert result.returncode == 2 and "unknown scenario" in result.stderr
    assert bench().returncode == 2  # neither an app nor a scenario
    result = bench("--scenario", "raw", "--servers", "none")
    assert result.returncode == 2 and "no server to run" in result.stderr


@needs_wrk
def test_a_server_of_ones_own_limited_to_a_scenario(tmp_path: Path) -> None:
    # uvicorn under another name through the NAME@SCENARIOS=COMMAND form.
    command = f"{sys.executable} -m uvicorn {{app}} --app-dir {{app_dir}} --port {{port}} --log-level warning"
    result = bench(
        "--scenario", "raw,params", "--servers", "dbridge-asgi", "--server", f"mine@raw={command}",
        "--baseline", "mine", "--duration", "1", "--warmup", "0", "--rounds", "1", "--json", str(tmp_path / "b.json"),
    )
    assert result.returncode == 0, result.stderr
    runs = {(r["scenario"], r["server"]) for r in json.loads((tmp_path / "b.json").read_text())["runs"]}
    assert runs == {("raw", "dbridge-asgi"), ("raw", "mine"), ("params", "dbridge-asgi")}


def test_idle_connections_are_held_and_measured(tmp_path: Path) -> None:
    result = bench(
        "--scenario", "idle_10k", "--idle-connections", "300", "--servers", "dbridge-asgi",
        "--rounds", "1", "--json", str(tmp_path / "b.json"),
    )
    assert result.returncode == 0, result.stderr
    (run,) = json.loads((tmp_path / "b.json").read_text())["runs"]
    assert run["connections_held"] == 300 and run["errors"] == 0
    assert run["rss_bytes_per_connection"] is not None


@pytest.mark.skipif(shutil.which("locust") is None and not Path(sys.executable).with_name("locust").exists(),
                    reason="locust is not installed")
def test_locust_mix_runs_headless(tmp_path: Path) -> None:
    result = bench(
        "--scenario", "locust_mix", "--servers", "dbridge-asgi", "--duration", "3", "--rounds", "1",
        "--json", str(tmp_path / "b.json"),
    )
    assert result.returncode == 0, result.stderr
    (run,) = json.loads((tmp_path / "b.json").read_text())["runs"]
    assert run["requests"] > 0 and run["errors"] == 0


def test_websocket_scenarios_against_dbridge_and_uvicorn_with_every_output(tmp_path: Path) -> None:
    result = bench(
        "--scenario", "ws_echo,ws_echo_raw", "--servers", "dbridge-asgi,uvicorn", "--duration", "1",
        "--warmup", "0", "--rounds", "1", "--gate", "dbridge-asgi/uvicorn>=0.01@ws_echo",
        "--json", str(tmp_path / "b.json"), "--markdown", str(tmp_path / "b.md"),
        "--png", str(tmp_path / "b.png"),
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "b.json").read_text())
    runs = {(r["scenario"], r["server"]): r for r in document["runs"]}
    assert set(runs) == {(s, server) for s in ("ws_echo", "ws_echo_raw")
                         for server in ("dbridge-asgi", "uvicorn")}
    for run in runs.values():
        assert run["requests"] > 0 and run["errors"] == 0 and run["ws_errors"] == NO_WS_ERRORS
        assert run["cpu_us_per_request"] > 0 and run["peak_rss_mb"] > 0 and run["p99_us"] > 0
        assert run["latency_per"] == "message"
    # The WebSocket baseline is uvicorn's sans-I/O protocol.
    assert runs["ws_echo", "uvicorn"]["command"].endswith("--ws websockets-sansio")
    assert [(g["scenario"], g["passed"]) for g in document["gates"]] == [("ws_echo", True)]
    assert document["environment"]["wsload"].endswith("dbridge-wsload")
    markdown = (tmp_path / "b.md").read_text()
    assert "| ws_echo | dbridge-asgi |" in markdown and "a request is one message" in markdown
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "msg/s" in result.stdout and "a request is one message" in result.stdout


@pytest.mark.skipif(
    shutil.which("granian") is None and not Path(sys.executable).with_name("granian").exists(),
    reason="granian is not installed",
)
def test_granian_serves_the_websocket_scenario(tmp_path: Path) -> None:
    result = bench("--scenario", "ws_echo_raw", "--servers", "granian", "--duration", "1", "--warmup", "0",
                   "--rounds", "1", "--json", str(tmp_path / "b.json"))
    assert result.returncode == 0, result.stderr
    (run,) = json.loads((tmp_path / "b.json").read_text())["runs"]
    assert run["requests"] > 0 and run["ws_errors"] == NO_WS_ERRORS
    assert "--no-ws" not in run["command"]  # the HTTP scenarios switch its WebSockets off, not this one


def test_a_websocket_scenario_of_ones_own_reports_the_servers_errors(tmp_path: Path) -> None:
    # --websocket: the command-line scenario is an echo at --path; /once closes after one echo.
    common = ["ws_misbehaving_app:app", "--app-dir", str(APPS_DIR), "--websocket",
              "--servers", "dbridge-asgi", "--connections", "3", "--message-size", "100", "--in-flight", "2", "--duration", "1",
              "--warmup", "0", "--rounds", "1"]
    result = bench(*common, "--path", "/echo", "--json", str(tmp_path / "good.json"))
    assert result.returncode == 0, result.stderr
    (run,) = json.loads((tmp_path / "good.json").read_text())["runs"]
    assert run["requests"] > 0 and run["ws_errors"] == NO_WS_ERRORS
    result = bench(*common, "--path", "/once", "--json", str(tmp_path / "bad.json"))
    assert result.returncode == 0, result.stderr
    (run,) = json.loads((tmp_path / "bad.json").read_text())["runs"]
    assert run["ws_errors"] == {**NO_WS_ERRORS, "closed": 3} and run["errors"] == 3
    assert "closed: the server sent close 1000" in run["error_detail"] + result.stderr
    # Nothing echoed right at all: the run is not a measurement.
    result = bench(*common, "--path", "/reverse")
    assert result.returncode == 2 and "no request completed" in result.stderr

# ---- callgrind of the whole server -------------------------------------------------------


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="valgrind cannot run a process with AddressSanitizer (make test-asan)")
def test_callgrind_asgi_counts_a_requests_instructions_and_keeps_the_dump(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "load" / "callgrind_asgi.py"
    result = subprocess.run(
        [sys.executable, str(script), "--scenario", "raw", "--rounds", "3", "--keep", str(tmp_path)],
        capture_output=True, text=True, timeout=BENCH_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[0]
    assert line.startswith("raw  dbridge-asgi") and "instructions per request" in line, result.stdout
    per_request = float(line.split()[2].replace(",", ""))
    # A request runs the interpreter: thousands of instructions at least; a figure
    # of millions would mean the zeroing or the division went wrong.
    assert 2_000 < per_request < 1_000_000, line
    dumps = list(tmp_path.glob("dbridge-asgi-raw.callgrind.1"))
    assert dumps and "Trigger: dump" in dumps[0].read_text(errors="replace")[:3000]
