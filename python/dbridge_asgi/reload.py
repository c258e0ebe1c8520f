"""`--reload`: a parent that watches files with watchfiles and restarts its one server process.

Behaves as uvicorn's WatchFilesReload (uvicorn/supervisors/watchfilesreload.py, 0.54): the
same options, default patterns and log lines. The server process is spawned, as uvicorn
spawns it, not forked as with --workers: watchfiles runs a thread in this process, and a
fork of a threaded process may inherit a lock held by that thread. Each new child imports
the code as it is on disk now. A child that fails to start (a syntax error just saved) is
not fatal here: the next change starts a new one.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from dbridge_asgi.config import Config
from dbridge_asgi.logging import ERROR_LOGGER
from dbridge_asgi.supervisor import log_process

logger = logging.getLogger(ERROR_LOGGER)

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

DEFAULT_INCLUDES = ["*.py"]
DEFAULT_EXCLUDES = [".*", ".py[cod]", ".sw.*", "~*"]


class FileFilter:
    """Which changed paths restart the server: uvicorn's include/exclude rules.

    A path matching an include pattern counts unless it is under an excluded directory or
    matches an exclude pattern; a path that ends with the include pattern itself (a
    file named literally) always counts. A default pattern named in the other list is dropped
    from its own (`--reload-exclude '*.py'` turns off the default include).
    """

    def __init__(self, config: Config) -> None:
        includes = [p for p in DEFAULT_INCLUDES if p not in config.reload_excludes]
        self.includes = sorted(set(includes + config.reload_includes))
        excludes = [p for p in DEFAULT_EXCLUDES if p not in config.reload_includes]
        self.exclude_dirs: list[Path] = []
        for pattern in config.reload_excludes:
            if Path(pattern).is_dir():
                self.exclude_dirs.append(Path(pattern).resolve())
            else:
                excludes.append(pattern)
        self.excludes = sorted(set(excludes))

    def __call__(self, path: Path) -> bool:
        for include in self.includes:
            if not path.match(include):
                continue
            if str(path).endswith(include):
                return True
            if any(directory in path.parents for directory in self.exclude_dirs):
                return False
            return not any(path.match(exclude) for exclude in self.excludes)
        return False


class Reloader:
    def __init__(self, config: Config, sockets: Sequence[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.should_exit = threading.Event()
        self.file_filter = FileFilter(config)

    def run(self) -> None:
        from watchfiles import watch

        log_process("Started reloader process [{pid}] using WatchFiles", os.getpid())
        previous = {sig: signal.signal(sig, self._on_signal) for sig in HANDLED_SIGNALS}
        try:
            process = self._start_server()
            changes_seen = watch(
                *self.config.reload_dirs,
                watch_filter=None,
                stop_event=self.should_exit,
                yield_on_timeout=True,  # so should_exit is looked at even when nothing changes
                ignore_permission_denied=True,
            )
            for changes in changes_seen:
                paths = sorted({Path(path) for _, path in changes if self.file_filter(Path(path))})
                if paths and not self.should_exit.is_set():
                    logger.warning(
                        "WatchFiles detected changes in %s. Reloading...", ", ".join(map(_display, paths))
                    )
                    process.terminate()
                    process.join()
                    process = self._start_server()
                # uvicorn's --reload-delay: a pause between looks, so a burst of saves
                # restarts once.
                if self.should_exit.wait(self.config.reload_delay):
                    break
            process.terminate()
            process.join()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log_process("Stopping reloader process [{pid}]", os.getpid())

    def _start_server(self) -> ServerProcess:
        process = ServerProcess(self.config, self.sockets)
        process.start()
        return process

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.should_exit.set()


class ServerProcess:
    """The one server process, spawned with the Config and the listening sockets."""

    def __init__(self, config: Config, sockets: Sequence[socket.socket]) -> None:
        multiprocessing.allow_connection_pickling()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve_spawned, args=(config, list(sockets))
        )

    def start(self) -> None:
        self._process.start()

    def terminate(self) -> None:
        if self._process.exitcode is None and self._process.pid is not None:
            os.kill(self._process.pid, signal.SIGTERM)

    def join(self) -> None:
        self._process.join()


def _serve_spawned(config: Config, sockets: list[socket.socket]) -> None:
    from dbridge_asgi.server import Server

    # A new interpreter: logging is configured again, as in uvicorn's subprocess_started.
    config.configure_logging()
    try:
        Server(config=config).run(sockets=sockets)
    except KeyboardInterrupt:
        pass


def _display(path: Path) -> str:
    try:
        return f"'{path.relative_to(Path.cwd())}'"
    except ValueError:
        return f"'{path}'"
