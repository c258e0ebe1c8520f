"""Figures out: medians per scenario and server with ratios to the baseline, as a terminal
table, Markdown (for a PR comment), JSON (for machines) and a PNG chart (for people)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

FIELDS = ["rps", "p50_us", "p90_us", "p99_us", "p999_us", "cpu_us_per_request", "peak_rss_mb",
          "rss_bytes_per_connection"]


def _median(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarize(runs: list[dict], baseline: str) -> list[dict]:
    order_scenarios = list(dict.fromkeys(r["scenario"] for r in runs))
    order_servers = list(dict.fromkeys(r["server"] for r in runs))
    rows = []
    for scenario in order_scenarios:
        for server in order_servers:
            mine = [r for r in runs if r["scenario"] == scenario and r["server"] == server]
            if not mine:
                continue
            row = {"scenario": scenario, "server": server, "rounds": len(mine),
                   "latency_per": mine[0].get("latency_per", "request")}
            for name in FIELDS:
                row[name] = _median([r.get(name) for r in mine])
            row["errors"] = sum(r.get("errors", 0) for r in mine)
            row["non_2xx"] = sum(r.get("non_2xx", 0) for r in mine)
            rows.append(row)
    for row in rows:
        base = next((r for r in rows if r["scenario"] == row["scenario"] and r["server"] == baseline), None)
        for name, key in (("rps_ratio", "rps"), ("cpu_ratio", "cpu_us_per_request"), ("p99_ratio", "p99_us")):
            mine, theirs = row.get(key), base.get(key) if base else None
            row[name] = mine / theirs if mine is not None and theirs else None
    return rows


def _latency(us: float | None) -> str:
    if us is None:
        return "n/a"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _number(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


COLUMNS = ["scenario", "server", "req/s", "p50", "p90", "p99", "p99.9", "CPU µs/req", "peak RSS",
           "errors", "req/s ×", "CPU/req ×", "p99 ×"]


def _cells(row: dict) -> list[str]:
    rss = f"{row['peak_rss_mb']:.0f} MB" if row.get("peak_rss_mb") is not None else "n/a"
    if row.get("rss_bytes_per_connection") is not None:
        rss += f" ({row['rss_bytes_per_connection'] / 1024:.1f} KB/conn)"
    return [row["scenario"], row["server"], _number(row["rps"], ",.0f"), _latency(row["p50_us"]),
            _latency(row["p90_us"]), _latency(row["p99_us"]), _latency(row["p999_us"]),
            _number(row["cpu_us_per_request"], ".2f"), rss, str(row["errors"] + row["non_2xx"]),
            _ratio(row["rps_ratio"]), _ratio(row["cpu_ratio"]), _ratio(row["p99_ratio"])]


def table(rows: list[dict], baseline: str) -> str:
    cells = [COLUMNS] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"(× = ratio to {baseline} in the same scenario; medians over the rounds)")
    if _has_messages(rows):
        lines.append(MESSAGES_NOTE)
    return "\n".join(lines)


MESSAGES_NOTE = "(WebSocket scenarios: a request is one message sent and its echo received)"


def _has_messages(rows: list[dict]) -> bool:
    return any(r.get("latency_per") == "message" for r in rows)


def markdown(rows: list[dict], baseline: str) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 2 + "---:|" * (len(COLUMNS) - 2)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    lines.append("")
    lines.append(f"Ratios (×) are to {baseline} in the same scenario; medians over the rounds.")
    if _has_messages(rows):
        lines.append("In the WebSocket scenarios a request is one message sent and its echo received.")
    return "\n".join(lines) + "\n"


def write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def write_png(path: Path, rows: list[dict]) -> None:
    """Throughput bars per scenario and p50/p99 latency per server, one row of charts per scenario."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError("the PNG chart needs matplotlib: pip install 'dbridge-asgi[bench]'") from e
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    fig, axes = plt.subplots(len(scenarios), 2, figsize=(11, 3.2 * len(scenarios)), squeeze=False)
    for (left, right), scenario in zip(axes, scenarios):
        mine = [r for r in rows if r["scenario"] == scenario]
        names = [r["server"] for r in mine]
        left.barh(names, [r["rps"] or 0 for r in mine], color="tab:blue")
        per = "messages" if mine[0].get("latency_per") == "message" else "requests"
        left.set_title(f"{scenario}: {per}/s")
        left.invert_yaxis()
        positions = range(len(mine))
        for offset, key, label in ((-0.2, "p50_us", "p50"), (0.2, "p99_us", "p99")):
            right.barh([p + offset for p in positions], [(r[key] or 0) / 1000 for r in mine], height=0.4,
                       label=label)
        right.set_yticks(list(positions), names)
        right.invert_yaxis()
        right.set_title(f"{scenario}: latency (ms)")
        right.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
