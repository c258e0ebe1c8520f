"""Every server setting, defined once and shared by the CLI, `run()` and the Gunicorn worker.

Argument names and defaults are uvicorn's `Config` for the options we share, so code that
builds a `uvicorn.Config` can build ours with the same keywords. Ours on top: `io`
(io_uring/epoll choice), `header_timeout` and the request-head limits (which the Gunicorn
worker fills from Gunicorn's --limit-request-* settings).
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import logging
import logging.config
import os
import socket
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
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
# uvicorn loads the TLS files in Config.load() and lets the ssl module's exception end
# the process (a traceback, exit 1); we log one line instead and keep the status.
TLS_CONFIG_FAILURE = 1

# The stdlib ssl module's numbers, which uvicorn's --ssl-version and --ssl-cert-reqs
# take: ssl.PROTOCOL_TLS_SERVER and ssl.CERT_NONE (uvicorn's defaults). TLS itself is
# OpenSSL in the C++ core (src/tls); the ssl module is not involved.
SSL_PROTOCOL_VERSION = 17
CERT_NONE = 0

LIFESPAN_MODES = ("auto", "on", "off")
LOOP_CHOICES = ("auto", "asyncio", "uvloop", "ring")
# uvicorn's HTTP implementations: accepted, and said to have no effect (our parser is the core's).
HTTP_CHOICES = ("auto", "h11", "httptools", "zttp")
INTERFACES = ("auto", "asgi3", "asgi2", "wsgi")
IO_CHOICES = ("auto", "uring", "epoll")
# uvicorn's --ws choices. The core has one WebSocket implementation and serves it for every
# choice but "none", which leaves upgrade requests to the app as plain HTTP (as uvicorn).
WS_CHOICES = ("auto", "none", "websockets", "websockets-sansio", "wsproto")

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


def _as_list(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class Config:
    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 8000,
        uds: str | None = None,
        fd: int | None = None,
        loop: str = "auto",
        http: str = "auto",
        http2: bool = False,
        h11_max_incomplete_event_size: int | None = None,
        reset_contextvars: bool = False,
        lifespan: str = "auto",
        env_file: str | os.PathLike[str] | None = None,
        log_config: dict[str, Any] | str | os.PathLike[str] | Any | None = LOGGING_CONFIG,
        log_level: str | int | None = None,
        access_log: bool = True,
        use_colors: bool | None = None,
        interface: str = "auto",
        reload: bool = False,
        reload_dirs: list[str] | str | None = None,
        reload_delay: float = 0.25,
        reload_includes: list[str] | str | None = None,
        reload_excludes: list[str] | str | None = None,
        workers: int | None = None,
        proxy_headers: bool = True,
        server_header: bool = True,
        date_header: bool = True,
        forwarded_allow_ips: list[str] | str | None = None,
        root_path: str = "",
        limit_concurrency: int | None = None,
        limit_max_requests: int | None = None,
        limit_max_requests_jitter: int = 0,
        backlog: int = 2048,
        timeout_keep_alive: int = 5,
        timeout_graceful_shutdown: int | None = None,
        timeout_worker_healthcheck: int = 5,
        headers: list[tuple[str, str]] | None = None,
        factory: bool = False,
        app_dir: str | None = None,
        io: str = "auto",
        header_timeout: float = 30.0,
        limit_request_line: int = 8192,
        limit_request_fields: int = 100,
        limit_request_field_size: int = 32768,
        ssl_keyfile: str | os.PathLike[str] | None = None,
        ssl_certfile: str | os.PathLike[str] | None = None,
        ssl_keyfile_password: str | None = None,
        ssl_version: int = SSL_PROTOCOL_VERSION,
        ssl_cert_reqs: int = CERT_NONE,
        ssl_ca_certs: str | os.PathLike[str] | None = None,
        ssl_ciphers: str | None = None,
        ws: str = "auto",
        ws_max_size: int = 16 * 1024 * 1024,
        ws_max_queue: int = 32,
        ws_ping_interval: float | None = 20.0,
        ws_ping_timeout: float | None = 20.0,
        ws_per_message_deflate: bool = True,
        send_timeout: float = 60.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.uds = uds
        self.fd = fd
        self.loop = loop
        self.http = http
        self.http2 = http2
        self.h11_max_incomplete_event_size = h11_max_incomplete_event_size
        self.reset_contextvars = reset_contextvars
        self.lifespan = lifespan
        self.log_config = log_config
        self.log_level = log_level
        self.access_log = access_log
        self.use_colors = use_colors
        self.interface = interface
        self.reload = reload
        self.reload_delay = reload_delay
        self.reload_includes = _as_list(reload_includes)
        self.reload_excludes = _as_list(reload_excludes)
        self.reload_dirs = self._watched_directories(_as_list(reload_dirs))
        self.workers = workers or 1
        # Applied by the core (asgi/proxy_headers.cc) to connections from forwarded_allow_ips.
        self.proxy_headers = proxy_headers
        self.server_header = server_header
        self.date_header = date_header
        self.root_path = root_path
        self.limit_concurrency = limit_concurrency
        self.limit_max_requests = limit_max_requests
        self.limit_max_requests_jitter = limit_max_requests_jitter
        self.backlog = backlog
        self.timeout_keep_alive = timeout_keep_alive
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
        self.timeout_worker_healthcheck = timeout_worker_healthcheck
        self.headers: list[tuple[str, str]] = list(headers or [])
        self.factory = factory
        self.app_dir = app_dir
        self.io = io
        self.header_timeout = header_timeout
        # The core's request-head limits (414 / 431). limit_request_field_size bounds the
        # whole header section, not one field: the core has no per-field limit.
        self.limit_request_line = limit_request_line
        self.limit_request_fields = limit_request_fields
        self.limit_request_field_size = limit_request_field_size
        if h11_max_incomplete_event_size is not None:
            # uvicorn's bound on a request head still being read (h11): ours is the
            # header-section limit, answered with 431 beyond it.
            self.limit_request_field_size = h11_max_incomplete_event_size
        self.ssl_keyfile = ssl_keyfile
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile_password = ssl_keyfile_password
        self.ssl_version = ssl_version
        self.ssl_cert_reqs = ssl_cert_reqs
        self.ssl_ca_certs = ssl_ca_certs
        self.ssl_ciphers = ssl_ciphers
        # The loaded TLS configuration (a _core.TLSContext), made by load() when is_ssl.
        self.tls: Any = None
        self.ws = ws
        self.ws_max_size = ws_max_size
        self.ws_max_queue = ws_max_queue
        self.ws_ping_interval = ws_ping_interval
        self.ws_ping_timeout = ws_ping_timeout
        self.ws_per_message_deflate = ws_per_message_deflate
        # Seconds a client may read none of a response before its connection is closed.
        self.send_timeout = send_timeout

        self._check_choice("lifespan", lifespan, LIFESPAN_MODES)
        self._check_choice("loop", loop, LOOP_CHOICES)
        self._check_choice("http", http, HTTP_CHOICES)
        self._check_choice("interface", interface, INTERFACES)
        self._check_choice("io", io, IO_CHOICES)
        self._check_choice("ws", ws, WS_CHOICES)
        if loop == "ring" and io == "epoll":
            raise ValueError("loop 'ring' runs on io_uring and cannot be combined with io 'epoll'")

        self.loaded = False
        self.loaded_app: Any = None
        self.encoded_headers: list[tuple[bytes, bytes]] = []
        self.configure_logging()
        self._note_options_without_effect()

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

    def _watched_directories(self, reload_dirs: list[str]) -> list[Path]:
        """--reload-dir, plus include patterns that name a directory, less excluded directories.

        As uvicorn: the working directory when none is left; only existing directories count.
        """
        if not self.reload:
            if reload_dirs or self.reload_includes or self.reload_excludes:
                logger.warning(
                    "Current configuration will not reload as not all conditions are met, "
                    "please refer to documentation."
                )
            return []
        candidates = [*reload_dirs, *(p for p in self.reload_includes if Path(p).is_dir())]
        directories = sorted({Path(d).resolve() for d in candidates if Path(d).is_dir()})
        excluded = [Path(p).resolve() for p in self.reload_excludes if Path(p).is_dir()]
        directories = [d for d in directories if not any(e == d or e in d.parents for e in excluded)]
        if not directories:
            if reload_dirs:
                logger.warning(
                    "Provided reload directories %s did not contain valid directories, watching current "
                    "working directory.",
                    reload_dirs,
                )
            directories = [Path.cwd()]
        return directories

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

    def trusted_proxies(self) -> tuple[bool, list[Any], list[Any], list[bytes]] | None:
        """forwarded_allow_ips for the core, parsed as uvicorn's ProxyHeadersMiddleware parses it.

        None when proxy headers are off. Otherwise (everyone, hosts, networks, literals):
        "*" alone trusts everyone; an entry with '/' that ipaddress takes as a network is one,
        other entries ipaddress takes as an address are one, and anything else (a Unix socket
        path, a name) is a literal compared with the text of the client host.
        """
        if not self.proxy_headers:
            return None
        allowed = self.forwarded_allow_ips
        if allowed in ("*", ["*"]):
            return (True, [], [], [])
        entries = [item.strip() for item in allowed.split(",")] if isinstance(allowed, str) else allowed
        hosts: list[tuple[bytes, str]] = []
        networks: list[tuple[bytes, bytes]] = []
        literals: list[bytes] = []
        for entry in entries:
            try:
                if "/" in entry:
                    network = ipaddress.ip_network(entry)
                    networks.append((network.network_address.packed, network.netmask.packed))
                else:
                    address = ipaddress.ip_address(entry)
                    hosts.append((address.packed, getattr(address, "scope_id", None) or ""))
                continue
            except ValueError:
                pass
            try:
                # Header values reach the comparison as Latin-1 text.
                literals.append(entry.encode("latin-1"))
            except UnicodeEncodeError:
                pass  # could never equal a header value
        return (False, hosts, networks, literals)

    def _note_options_without_effect(self) -> None:
        """uvicorn options that choose what we do not have: accepted, and said so once."""
        if self.http != "auto":
            logger.info(
                "--http %s has no effect: dbridge-asgi parses HTTP/1.1 in its C++ core.", self.http
            )
        if self.ws not in ("auto", "none"):
            logger.info(
                "--ws %s has no effect: dbridge-asgi serves WebSockets with its C++ implementation.", self.ws
            )
        if self.http2:
            logger.warning("--http2: HTTP/2 is not supported by dbridge-asgi; serving HTTP/1.1.")

    @property
    def is_ssl(self) -> bool:
        return bool(self.ssl_keyfile or self.ssl_certfile)

    def load_tls(self) -> None:
        """Loads the --ssl-* files into the core's TLS context; logs the reason and exits 1 if it cannot."""
        from dbridge_asgi import _core

        try:
            self.tls = _core.TLSContext(
                os.fspath(self.ssl_certfile) if self.ssl_certfile else "",
                keyfile=os.fspath(self.ssl_keyfile) if self.ssl_keyfile else "",
                password=self.ssl_keyfile_password or "",
                ca_certs=os.fspath(self.ssl_ca_certs) if self.ssl_ca_certs else "",
                cert_reqs=int(self.ssl_cert_reqs),
                # None, as in uvicorn: OpenSSL's default cipher list.
                ciphers=self.ssl_ciphers or "",
                version=int(self.ssl_version),
            )
        except _core.TLSConfigError as exc:
            logger.error("TLS configuration error: %s", exc)
            sys.exit(TLS_CONFIG_FAILURE)

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

        if self.is_ssl and self.tls is None:
            self.load_tls()

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
        if logging.getLogger(ERROR_LOGGER).isEnabledFor(TRACE_LOG_LEVEL):
            from dbridge_asgi.message_logger import MessageLogger

            app = MessageLogger(app)

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
