"""Every server setting, defined once and shared by the CLI, `run()` and the Gunicorn worker.

Argument names and defaults are uvicorn's `Config` for the options we share, so code that
builds a `uvicorn.Config` can build ours with the same keywords. Ours on top: `io`
(io_uring/epoll choice) and `header_timeout`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import logging.config
import os
import socket
import stat
import sys
from collections.abc import Sequence
from typing import Any, Callable

from dbridge_asgi.asgi2 import ASGI2Adapter
from dbridge_asgi.importer import ImportFromStringError, import_from_string
from dbridge_asgi.logging import (
    ACCESS_LOGGER,
    ERROR_LOGGER,
    LOG_LEVELS,
    LOGGING_CONFIG,
    TRACE_LOG_LEVEL,
    default_logging_config,
)

# Exit status for "the server could not start" (lifespan startup failed, bind failed,
# app not importable): uvicorn's value.
STARTUP_FAILURE = 3

LIFESPAN_MODES = ("auto", "on", "off")
LOOP_CHOICES = ("auto", "asyncio", "uvloop", "ring")
INTERFACES = ("auto", "asgi3", "asgi2", "wsgi")
IO_CHOICES = ("auto", "uring", "epoll")

logger = logging.getLogger(ERROR_LOGGER)

if sys.version_info >= (3, 14):
    from inspect import iscoroutinefunction
else:
    # asyncio's also recognises functions marked by asgiref's markcoroutinefunction on
    # Python < 3.12 (Django's handlers), which inspect's misses; uvicorn uses it for that.
    from asyncio import iscoroutinefunction


def _is_asgi3(app: Any) -> bool:
    """uvicorn's interface detection: ASGI 3 apps are `async def` callables, ASGI 2 ones are not.

    One addition: a callable that is itself a coroutine function (a functools.partial of
    an `async def` app) is ASGI 3. uvicorn only looks at its __call__ and takes it for
    ASGI 2, which then fails on the first request; an ASGI 2 app, returning an instance
    synchronously, never passes this test.
    """
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app):
        return iscoroutinefunction(app)
    # The __call__ method itself, not whether app is callable: hence getattr.
    return iscoroutinefunction(app) or iscoroutinefunction(getattr(app, "__call__", None))  # noqa: B004


class Config:
    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 8000,
        uds: str | None = None,
        fd: int | None = None,
        loop: str = "auto",
        lifespan: str = "auto",
        env_file: str | os.PathLike[str] | None = None,
        log_config: dict[str, Any] | str | os.PathLike[str] | Any | None = LOGGING_CONFIG,
        log_level: str | int | None = None,
        access_log: bool = True,
        use_colors: bool | None = None,
        interface: str = "auto",
        reload: bool = False,
        workers: int | None = None,
        proxy_headers: bool = True,
        server_header: bool = True,
        date_header: bool = True,
        forwarded_allow_ips: list[str] | str | None = None,
        root_path: str = "",
        limit_concurrency: int | None = None,
        limit_max_requests: int | None = None,
        backlog: int = 2048,
        timeout_keep_alive: int = 5,
        timeout_graceful_shutdown: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        factory: bool = False,
        app_dir: str | None = None,
        io: str = "auto",
        header_timeout: float = 30.0,
        send_timeout: float = 60.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.uds = uds
        self.fd = fd
        self.loop = loop
        self.lifespan = lifespan
        self.log_config = log_config
        self.log_level = log_level
        self.access_log = access_log
        self.use_colors = use_colors
        self.interface = interface
        # Not supported yet: run() says so and serves without it.
        self.reload = reload
        self.workers = workers or 1
        # Not applied yet: the core does not rewrite client/scheme from X-Forwarded-* or
        # Forwarded. Stored so configurations written for uvicorn load unchanged.
        self.proxy_headers = proxy_headers
        self.server_header = server_header
        self.date_header = date_header
        self.root_path = root_path
        self.limit_concurrency = limit_concurrency
        self.limit_max_requests = limit_max_requests
        self.backlog = backlog
        self.timeout_keep_alive = timeout_keep_alive
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
        self.headers: list[tuple[str, str]] = list(headers or [])
        self.factory = factory
        self.app_dir = app_dir
        self.io = io
        self.header_timeout = header_timeout
        # Seconds a client may read none of a response before its connection is closed.
        self.send_timeout = send_timeout

        self._check_choice("lifespan", lifespan, LIFESPAN_MODES)
        self._check_choice("loop", loop, LOOP_CHOICES)
        self._check_choice("interface", interface, INTERFACES)
        self._check_choice("io", io, IO_CHOICES)
        if loop == "ring" and io == "epoll":
            raise ValueError("loop 'ring' runs on io_uring and cannot be combined with io 'epoll'")

        self.loaded = False
        self.loaded_app: Any = None
        self.encoded_headers: list[tuple[bytes, bytes]] = []
        self.configure_logging()

        if env_file is not None:
            self._load_env_file(env_file)

        # uvicorn reads these two from the environment when they are not given.
        self.workers_from_environment = False
        if workers is None and "WEB_CONCURRENCY" in os.environ:
            self.workers = int(os.environ["WEB_CONCURRENCY"])
            self.workers_from_environment = True
        self.forwarded_allow_ips: list[str] | str
        if forwarded_allow_ips is None:
            self.forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
        else:
            self.forwarded_allow_ips = forwarded_allow_ips

    @staticmethod
    def _check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
        if value not in choices:
            allowed = ", ".join(repr(choice) for choice in choices)
            raise ValueError(f"{name} must be one of {allowed}, not {value!r}")

    @staticmethod
    def _load_env_file(env_file: str | os.PathLike[str]) -> None:
        try:
            from dotenv import load_dotenv
        except ImportError as exc:
            raise ImportError("Install the python-dotenv package to use --env-file.") from exc
        logger.info("Loading environment from '%s'", env_file)
        load_dotenv(dotenv_path=env_file)

    @property
    def asgi_version(self) -> str:
        return "2.0" if self.interface == "asgi2" else "3.0"

    def configure_logging(self) -> None:
        """Applies log_config (a dict, or a .json/.yaml/.ini file), then log_level and access_log on top."""
        logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")

        if self.log_config is not None:
            log_config = self.log_config
            if isinstance(log_config, os.PathLike):
                log_config = os.fspath(log_config)
            if log_config is LOGGING_CONFIG:
                logging.config.dictConfig(default_logging_config(self.use_colors))
            elif isinstance(log_config, dict):
                if self.use_colors in (True, False):
                    for formatter in ("default", "access"):
                        log_config.get("formatters", {}).get(formatter, {})["use_colors"] = self.use_colors
                logging.config.dictConfig(log_config)
            elif isinstance(log_config, str) and log_config.endswith(".json"):
                with open(log_config) as file:
                    logging.config.dictConfig(json.load(file))
            elif isinstance(log_config, str) and log_config.endswith((".yaml", ".yml")):
                try:
                    import yaml
                except ImportError as exc:
                    raise ImportError(
                        "Install the PyYAML package to use --log-config with YAML files."
                    ) from exc
                with open(log_config) as file:
                    logging.config.dictConfig(yaml.safe_load(file))
            else:
                # An .ini file (or a ConfigParser / open file): fileConfig's own format.
                logging.config.fileConfig(log_config, disable_existing_loggers=False)

        if self.log_level is not None:
            if isinstance(self.log_level, str):
                level = LOG_LEVELS[self.log_level.lower()]
            else:
                level = self.log_level
            for name in (ERROR_LOGGER, ACCESS_LOGGER, "dbridge_asgi.asgi"):
                logging.getLogger(name).setLevel(level)
        if self.access_log is False:
            access_logger = logging.getLogger(ACCESS_LOGGER)
            access_logger.handlers = []
            access_logger.propagate = False

    def load_app(self) -> Any:
        """Imports APP (after putting app_dir on sys.path). Logs the error and exits 3 if it cannot."""
        if self.app_dir is not None and self.app_dir not in sys.path:
            # "" is the working directory; the console script's own sys.path[0] is its bin/.
            sys.path.insert(0, self.app_dir)
        try:
            return import_from_string(self.app)
        except ImportFromStringError as exc:
            logger.error("Error loading ASGI app. %s", exc)
            sys.exit(STARTUP_FAILURE)

    def load(self) -> None:
        """Imports the app, calls it if it is a factory, and adapts its interface to ASGI 3."""
        assert not self.loaded

        self.encoded_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers
        ]

        app = self.load_app()
        # uvicorn's factory rule: try calling APP with no arguments. An ASGI app refuses
        # (TypeError); a factory returns the app, with a warning unless --factory said so.
        try:
            app = app()
        except TypeError as exc:
            if self.factory:
                logger.error("Error loading ASGI app factory: %s", exc)
                sys.exit(STARTUP_FAILURE)
        else:
            if not self.factory:
                logger.warning(
                    "ASGI app factory detected. Using it, but please consider setting the --factory flag "
                    "explicitly."
                )

        if self.interface == "auto":
            self.interface = "asgi3" if _is_asgi3(app) else "asgi2"
        if self.interface == "wsgi":
            logger.error(
                "WSGI applications are not supported: wrap the app in an ASGI adapter "
                "(for example a2wsgi's WSGIMiddleware) and serve that."
            )
            sys.exit(STARTUP_FAILURE)
        if self.interface == "asgi2":
            app = ASGI2Adapter(app)

        self.loaded_app = app
        self.loaded = True

    @property
    def sends_server_header(self) -> bool:
        """uvicorn adds its own Server header only if --header did not set one."""
        return self.server_header and all(name != b"server" for name, _ in self.encoded_headers)

    def get_loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop]:
        """uvloop for "uvloop", and for "auto" when it is installed; the stdlib loop otherwise.

        "ring": the stdlib loop with the io_uring ring as its selector (dbridge_asgi.loops).
        """
        if self.loop == "ring":
            from .loops import new_ring_loop

            return new_ring_loop
        if self.loop in ("auto", "uvloop"):
            try:
                import uvloop
            except ImportError:
                if self.loop == "uvloop":
                    raise
            else:
                return uvloop.new_event_loop
        return asyncio.new_event_loop

    def bind_socket(self) -> socket.socket:
        """The listening socket for uds, fd or host:port, non-blocking and listening.

        As uvicorn's `Config.bind_socket`: one socket, AF_INET6 when the host contains ':',
        SO_REUSEADDR, a Unix socket made 0o666. Unlike uvicorn's single-process path (which
        goes through asyncio's create_server), "localhost" binds one address, not one per
        address family, and "::" is dual-stack wherever the kernel's default is.
        Raises OSError; the caller decides how to report it.
        """
        if self.uds is not None:
            sock = self._bind_unix_socket(self.uds)
        elif self.fd is not None:
            # socket.socket(fileno=...) detects the family (fromfd, which uvicorn uses,
            # would label a TCP socket AF_UNIX). A dup: the caller's fd stays theirs.
            sock = socket.socket(fileno=os.dup(self.fd))
        else:
            family = socket.AF_INET6 if self.host and ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, self.port))
            except OSError:
                sock.close()
                raise
        try:
            sock.setblocking(False)
            sock.listen(self.backlog)
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        return sock

    @staticmethod
    def _bind_unix_socket(path: str) -> socket.socket:
        # Like asyncio's create_unix_server (uvicorn's single-process path): a stale socket
        # file left by an earlier run is replaced and its permissions are kept; a new one
        # is made 0o666. Anything else at the path is an error, not ours to delete.
        mode = 0o666
        try:
            existing = os.stat(path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(existing.st_mode):
                raise OSError(f"{path} exists and is not a socket")
            mode = stat.S_IMODE(existing.st_mode)
            os.remove(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, mode)
        except OSError:
            sock.close()
            raise
        return sock
