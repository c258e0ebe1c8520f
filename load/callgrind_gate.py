#!/usr/bin/env python3
"""The exact performance gate for the C++ path: instructions per request under callgrind.

dbridge-replay (load/replay/main.cc) sends a fixed mix of 21 requests per round through
the core (reactor, parser, writer) on one connection, each batch after the previous
batch's responses. Run twice under `valgrind --tool=callgrind` with different round
counts, the difference of the server thread's instruction counts divided by the
difference in requests is the cost of one request with the start-up cost cancelled out.
It does not move with the machine's load, so the budget in load/callgrind_budget.json
can be tight: CI fails when a change costs more than the tolerance above it.

    python3 load/callgrind_gate.py --replay build/cpp/dbridge-replay [--update]

Standard library only; needs valgrind (Debian: valgrind). The epoll backend is measured:
valgrind does not follow io_uring's shared rings, and the request path above the backend
is the same code.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BUDGET = Path(__file__).resolve().parent / "callgrind_budget.json"
REQUESTS_PER_ROUND = 21
ROUNDS = (20, 120)


def server_instructions(replay: str, rounds: int, workdir: Path) -> int:
    out = workdir / f"cg-{rounds}.out"
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}",
         replay, "--io", "epoll", "--rounds", str(rounds)],
        capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"callgrind_gate: the replay failed ({result.returncode}):\n{result.stderr[-3000:]}")
    served = int(result.stdout.split()[-1])
    if served != rounds * REQUESTS_PER_ROUND:
        raise SystemExit(f"callgrind_gate: {served} requests answered, expected {rounds * REQUESTS_PER_ROUND}")
    # Thread 1 is the server (main thread); the client thread writes another file.
    text = Path(f"{out}-01").read_text()
    match = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"callgrind_gate: no instruction total in {out}-01")
    return int(match.group(1))


def measure(replay: str) -> float:
    with tempfile.TemporaryDirectory(prefix="dbridge-callgrind-") as tmp:
        low, high = (server_instructions(replay, r, Path(tmp)) for r in ROUNDS)
    return (high - low) / ((ROUNDS[1] - ROUNDS[0]) * REQUESTS_PER_ROUND)


def valgrind_version() -> str:
    return subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replay", required=True, help="path to dbridge-replay")
    parser.add_argument("--budget", type=Path, default=BUDGET)
    parser.add_argument("--update", action="store_true", help="record the measured figure as the new budget")
    args = parser.parse_args()

    measured = measure(args.replay)
    print(f"instructions per request (server thread, epoll): {measured:,.0f}")
    if args.update:
        previous = json.loads(args.budget.read_text()) if args.budget.exists() else {}
        args.budget.write_text(json.dumps({
            "instructions_per_request": round(measured),
            "tolerance": previous.get("tolerance", 0.03),
            "recorded": datetime.date.today().isoformat(),
            "valgrind": valgrind_version(),
            "mix": f"{REQUESTS_PER_ROUND} requests per round (load/replay/main.cc), rounds {ROUNDS[0]} and {ROUNDS[1]}",
        }, indent=2) + "\n")
        print(f"budget recorded in {args.budget}")
        return 0
    budget = json.loads(args.budget.read_text())
    limit = budget["instructions_per_request"] * (1 + budget["tolerance"])
    ratio = measured / budget["instructions_per_request"]
    print(f"budget: {budget['instructions_per_request']:,} (+{budget['tolerance']:.0%} allowed): {ratio:.3f}× of it")
    if measured > limit:
        print(f"callgrind gate FAILED: {measured:,.0f} instructions per request is over the budget's "
              f"{limit:,.0f}. Find the cost (callgrind_annotate on the replay), or, if it is worth it, "
              f"record a new budget with --update and say why in the commit.", file=sys.stderr)
        return 1
    if ratio < 1 - budget["tolerance"]:
        print("well under budget: record the gain with --update so it is kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
