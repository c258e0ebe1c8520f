"""Helpers for the tests of the Python shell (CLI, config, importer, lifespan): no server needed.

Config() configures logging and may put app_dir on sys.path, as uvicorn's does; these
helpers give each test its own app modules and put the process-wide state back after it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

SHELL_LOGGERS = ("dbridge_asgi", "dbridge_asgi.error", "dbridge_asgi.access", "dbridge_asgi.asgi")
CLI_TIMEOUT = 60.0  # seconds for one `python -m dbridge_asgi` that is expected to exit by itself


@contextlib.contextmanager
def preserved_process_state(app_directory: Path) -> Iterator[None]:
    """Restores our loggers and sys.path after the block, and forgets the modules imported
    from `app_directory` (each test writes its own app modules there)."""
    saved_loggers = []
    for name in SHELL_LOGGERS:
        log = logging.getLogger(name)
        saved_loggers.append((log, list(log.handlers), log.level, log.propagate, log.disabled))
    saved_path = list(sys.path)
    try:
        yield
    finally:
        for log, handlers, level, propagate, disabled in saved_loggers:
            log.handlers = handlers
            log.setLevel(level)
            log.propagate = propagate
            log.disabled = disabled
        sys.path[:] = saved_path
        root = str(app_directory)
        for name, module in list(sys.modules.items()):
            if (getattr(module, "__file__", None) or "").startswith(root):
                del sys.modules[name]


def write_module(directory: Path, name: str, source: str) -> Path:
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int | None = None) -> list[str]:
        return [r.getMessage() for r in self.records if level is None or r.levelno == level]


@contextlib.contextmanager
def recorded(logger_name: str) -> Iterator[RecordingHandler]:
    """Records what `logger_name` logs at INFO and above, whatever propagate says."""
    log = logging.getLogger(logger_name)
    handler = RecordingHandler()
    saved_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(saved_level)


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs `python -m dbridge_asgi ARGS` to completion: the real exit code and stderr."""
    full_env = dict(os.environ)
    for name in list(full_env):
        if name.startswith(("DBRIDGE_ASGI_", "UVICORN_")) or name == "WEB_CONCURRENCY":
            del full_env[name]
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dbridge_asgi", *args],
        check=False,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
