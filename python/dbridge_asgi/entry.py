"""The `dbridge-asgi` command: `dbridge-asgi bench ...` is the benchmark harness
(dbridge_bench, shipped from load/); anything else serves an app as uvicorn would."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "bench":
        from dbridge_bench.cli import main as bench

        sys.exit(bench(sys.argv[2:]))
    from dbridge_asgi.main import main as serve

    serve()
