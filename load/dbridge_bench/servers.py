"""The servers a benchmark compares, as commands. Built in: dbridge-asgi, uvicorn (uvloop +
httptools, as the issue's baseline is defined; websockets-sansio for WebSockets) and
granian (ASGI, one worker), each with its access log off; anything else as NAME=COMMAND
with {app}, {app_dir}, {host}, {port}."""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .procs import BenchError

HOST = "127.0.0.1"


@dataclass
class Server:
    name: str
    template: list[str]  # with {app}, {app_dir}, {host}, {port}
    only: set[str] | None = None  # the scenarios it runs in (None: all)
    builtin: bool = False  # one of ours: takes the options a scenario needs (SCENARIO_ARGS)

    def command(self, app: str, app_dir: Path, port: int, extra: list[str]) -> list[str]:
        values = {"app": app, "app_dir": str(app_dir), "host": HOST, "port": str(port)}
        return [part.format(**values) for part in self.template] + extra


def _python_tool(name: str) -> str:
    """A console script installed next to this interpreter, else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name} is not installed (pip install 'dbridge-asgi[bench]')")
    return found


def builtin(name: str) -> Server:
    if name == "dbridge-asgi" or name.startswith("dbridge-asgi:"):
        # dbridge-asgi:ARGS: a variant with extra options, e.g. "dbridge-asgi:--loop ring".
        variant = shlex.split(name.split(":", 1)[1]) if ":" in name else []
        return Server(name, [sys.executable, "-m", "dbridge_asgi", "{app}", "--app-dir", "{app_dir}",
                             "--host", "{host}", "--port", "{port}", "--no-access-log",
                             "--log-level", "warning", *variant], builtin=True)
    if name == "uvicorn":
        return Server(name, [sys.executable, "-m", "uvicorn", "{app}", "--app-dir", "{app_dir}",
                             "--host", "{host}", "--port", "{port}", "--loop", "uvloop",
                             "--http", "httptools", "--no-access-log", "--log-level", "warning"],
                      builtin=True)
    if name == "granian":
        return Server(name, [_python_tool("granian"), "--interface", "asgi", "--workers", "1",
                             "--host", "{host}", "--port", "{port}", "--log-level", "warning",
                             "--working-dir", "{app_dir}", "{app}"], builtin=True)
    raise BenchError(f"unknown server {name!r}: give NAME=COMMAND for servers that are not built in")


def parse(spec: str) -> Server:
    """"uvicorn", "dbridge-asgi:--loop ring", or "NAME[@SCENARIO,...]=COMMAND" with {port} in
    COMMAND: a server of one's own, limited to the scenarios named (a C-only responder
    that answers every request alike is a floor only where the request is that simple)."""
    if "=" in spec.split(" ", 1)[0]:
        name, command = spec.split("=", 1)
        name, _, scenarios = name.partition("@")
        template = shlex.split(command)
        if not name or not template:
            raise BenchError(f"bad server {spec!r}: expected NAME[@SCENARIOS]=COMMAND")
        if not any("{port}" in part for part in template):
            raise BenchError(f"server {name!r}: the command must take the port as {{port}}")
        only = {s for s in scenarios.split(",") if s} or None
        return Server(name, template, only)
    return builtin(spec)


# Options a kind of scenario needs from each built-in server (matched by the name before
# ':'); a kind not listed takes the "wrk" options. Servers given as commands take none.
# granian keeps idle HTTP/1 connections open without a timeout, and has its WebSocket
# support switched off for plain HTTP (uvicorn's costs nothing until a client upgrades).
SCENARIO_ARGS = {
    "idle": {
        "dbridge-asgi": ["--timeout-keep-alive", "600"],
        "uvicorn": ["--timeout-keep-alive", "600"],
        "granian": ["--no-ws"],
    },
    "ws": {
        # The baseline for WebSockets: uvicorn's sans-I/O websockets protocol.
        "uvicorn": ["--ws", "websockets-sansio"],
    },
    "wrk": {
        "granian": ["--no-ws"],
    },
}


def scenario_args(server: Server, kind: str) -> list[str]:
    if not server.builtin:
        return []
    table = SCENARIO_ARGS.get(kind, SCENARIO_ARGS["wrk"])
    return table.get(server.name.split(":")[0], [])
