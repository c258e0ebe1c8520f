"""dbridge-bench: the side-by-side benchmark harness and CI performance gate.

`dbridge-asgi bench APP` runs APP under each server in turn (dbridge-asgi, uvicorn with
uvloop + httptools, granian, or any command), pinned to its CPU set with the load
generator on the others, in alternation (A B C A B C) so drift hits all alike, and
prints the figures with ratios to the baseline; `--gate` turns a ratio into an exit code.
Shipped in the wheel as a package of its own (the code lives in load/ with the
scenarios it runs).
"""
