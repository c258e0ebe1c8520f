"""The performance gate: `[METRIC:]A/B OP FLOOR[@SCENARIO]`, e.g. "dbridge-asgi/uvicorn>=1.5"
(throughput ratio), "cpu:dbridge-asgi/uvicorn<=0.6" (CPU per request), "p99:dbridge-asgi/uvicorn<=1"
or "rps:dbridge-asgi/granian>=1@fastapi_get". Checked on the medians of every scenario
that ran both servers (or the one named)."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

METRICS = {
    "rps": ("rps", "req/s"),
    "cpu": ("cpu_us_per_request", "CPU µs/req"),
    "p50": ("p50_us", "µs p50"),
    "p90": ("p90_us", "µs p90"),
    "p99": ("p99_us", "µs p99"),
    "p999": ("p999_us", "µs p99.9"),
    "rss": ("peak_rss_mb", "MB peak RSS"),
    "conn": ("rss_bytes_per_connection", "B/connection"),
}
OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_PATTERN = re.compile(
    r"^\s*(?:(?P<metric>[a-z0-9]+):)?(?P<a>[^/]+?)/(?P<b>[^<>=]+?)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?P<floor>[0-9]*\.?[0-9]+)\s*(?:@(?P<scenario>\S+))?\s*$"
)


@dataclass
class Gate:
    text: str
    metric: str
    a: str
    b: str
    op: str
    floor: float
    scenario: str | None


def parse(text: str) -> Gate:
    m = _PATTERN.match(text)
    if m is None:
        raise ValueError(f"bad gate {text!r}: expected [METRIC:]A/B OP NUMBER[@SCENARIO], e.g. 'dbridge-asgi/uvicorn>=1.5'")
    metric = m["metric"] or "rps"
    if metric not in METRICS:
        raise ValueError(f"bad gate {text!r}: unknown metric {metric!r} (one of {', '.join(METRICS)})")
    return Gate(text, metric, m["a"].strip(), m["b"].strip(), m["op"], float(m["floor"]), m["scenario"])


@dataclass
class Outcome:
    gate: Gate
    scenario: str
    ratio: float | None
    passed: bool
    message: str


def check(gates: list[Gate], summary: list[dict]) -> list[Outcome]:
    """One outcome per gate and scenario; a gate that matches no scenario fails (a gate
    that checks nothing must not pass silently)."""
    outcomes = []
    for gate in gates:
        key, unit = METRICS[gate.metric]
        scenarios = sorted({row["scenario"] for row in summary})
        if gate.scenario is not None:
            scenarios = [s for s in scenarios if s == gate.scenario]
        matched = False
        for scenario in scenarios:
            rows = {row["server"]: row for row in summary if row["scenario"] == scenario}
            if gate.a not in rows or gate.b not in rows:
                continue
            a, b = rows[gate.a].get(key), rows[gate.b].get(key)
            if a is None or b is None:
                continue
            matched = True
            if b == 0:
                outcomes.append(Outcome(gate, scenario, None, False, f"gate {gate.text} in {scenario}: {gate.b} measured 0 {unit}"))
                continue
            ratio = a / b
            passed = OPERATORS[gate.op](ratio, gate.floor)
            verdict = "passed" if passed else "FAILED"
            message = (f"gate {gate.text} {verdict} in scenario {scenario}: {gate.a} {a:,.2f} {unit} / "
                       f"{gate.b} {b:,.2f} {unit} = {ratio:.3f} (needs {gate.op} {gate.floor:g})")
            outcomes.append(Outcome(gate, scenario, ratio, passed, message))
        if not matched:
            where = f"scenario {gate.scenario}" if gate.scenario else "any scenario"
            outcomes.append(Outcome(gate, gate.scenario or "-", None, False,
                                    f"gate {gate.text} FAILED: no figures for both {gate.a} and {gate.b} in {where}"))
    return outcomes
