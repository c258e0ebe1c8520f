"""`dbridge-asgi bench`: the harness end to end on short runs (real servers, real wrk and
locust), and the gate's grammar and verdicts. Figures are not asserted, only that they
exist and that the gate turns a ratio into the right exit status and message."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbridge_bench import gate, loadgen
from dbridge_bench.scenarios import SHIPPED, Scenario

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"
BENCH_TIMEOUT = 300

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


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


# ---- callgrind of the whole server -------------------------------------------------------


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
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
