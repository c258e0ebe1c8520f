"""The `dbridge-asgi` command and `run()`, uvicorn's two front doors.

Options keep uvicorn's names, defaults and meaning, so a `uvicorn main:app ...` command
line works with the program name changed. Each option can also come from the environment
as DBRIDGE_ASGI_<NAME> or, for scripts and container images written for uvicorn,
UVICORN_<NAME> (the first one set wins). <NAME> is the option's parameter name in upper
case, as uvicorn's auto_envvar_prefix makes it: UVICORN_PORT, UVICORN_HEADERS.
"""

from __future__ import annotations

import inspect
import logging
import os
import platform
import socket
import stat
import sys
from typing import Any, Callable

import click

from dbridge_asgi.config import (
    HTTP_CHOICES,
    INTERFACES,
    IO_CHOICES,
    LIFESPAN_MODES,
    LOOP_CHOICES,
    STARTUP_FAILURE,
    WS_CHOICES,
    Config,
)
from dbridge_asgi.logging import ERROR_LOGGER, LOG_LEVELS, LOGGING_CONFIG
from dbridge_asgi.reload import Reloader
from dbridge_asgi.server import Server
from dbridge_asgi.supervisor import Supervisor

logger = logging.getLogger(ERROR_LOGGER)

ENV_PREFIXES = ("DBRIDGE_ASGI", "UVICORN")


def _envvars(name: str) -> list[str]:
    return [f"{prefix}_{name.upper()}" for prefix in ENV_PREFIXES]


# Each option's default is Config's (one definition for the CLI, run() and the Gunicorn
# worker, which all build a Config); an option states its own only where the command line
# needs another form (multiple values, log_config's "not given").
_CONFIG_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(Config.__init__).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}


def option(*param_decls: str, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """click.option with Config's default and the two environment variables named after it."""
    name = click.Option(param_decls).name
    assert name is not None
    if "default" not in attrs and not attrs.get("multiple") and name in _CONFIG_DEFAULTS:
        attrs["default"] = _CONFIG_DEFAULTS[name]
    return click.option(*param_decls, envvar=_envvars(name), **attrs)


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from dbridge_asgi import __version__

    click.echo(
        f"Running dbridge-asgi {__version__} with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}"
    )
    ctx.exit()


def _parse_headers(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    headers = []
    for value in values:
        name, colon, header_value = value.partition(":")
        if not colon or not name.strip():
            raise click.BadParameter(f"{value!r} is not a Name:Value pair", ctx=ctx, param=param)
        # Whitespace around the value is not part of it (RFC 9110 §5.5); uvicorn keeps it.
        headers.append((name.strip(), header_value.strip()))
    return headers


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("app", envvar=_envvars("app"))
@option("--host", type=str, show_default=True, help="Listen on this address.")
@option(
    "--port",
    type=int,
    show_default=True,
    help="Listen on this TCP port; 0 lets the kernel pick a free one.",
)
@option("--uds", type=str, help="Listen on this Unix domain socket path instead of host:port.")
@option(
    "--fd",
    type=int,
    help="Serve on an already-bound socket inherited as this file descriptor (socket activation, supervisors).",
)
@option(
    "--reload", is_flag=True, help="Restart the server when files change (needs watchfiles)."
)
@option(
    "--reload-dir",
    "reload_dirs",
    multiple=True,
    type=click.Path(exists=True),
    help="Watch this directory for changes (repeatable); the working directory by default.",
)
@option(
    "--reload-include",
    "reload_includes",
    multiple=True,
    help="Also restart for changes to files matching this glob (repeatable); '*.py' by default.",
)
@option(
    "--reload-exclude",
    "reload_excludes",
    multiple=True,
    help="Ignore changes to files matching this glob, or in this directory (repeatable); "
    "'.*, .py[cod], .sw.*, ~*' by default.",
)
@option(
    "--reload-delay",
    type=float,
    show_default=True,
    help="Seconds between looks for changes.",
)
@option(
    "--workers",
    type=int,
    help="Number of worker processes, kept running by a parent process; defaults to $WEB_CONCURRENCY, else 1.",
)
@option(
    "--http",
    type=click.Choice(HTTP_CHOICES),
    show_default=True,
    help="Accepted for uvicorn compatibility: HTTP/1.1 is parsed by the C++ core whatever is chosen (logged once).",
)
@option(
    "--http2",
    is_flag=True,
    help="Accepted for uvicorn compatibility: HTTP/2 is not served; HTTP/1.1 is (logged once).",
)
@option(
    "--h11-max-incomplete-event-size",
    type=int,
    help="The most bytes of an incomplete request head to buffer (h11's limit in uvicorn): here the header-section limit (431 beyond).",
)
@option(
    "--reset-contextvars",
    is_flag=True,
    help="Run each ASGI request in a fresh contextvars.Context, as uvicorn does with this flag.",
)
@option(
    "--loop",
    type=click.Choice(LOOP_CHOICES),
    show_default=True,
    help="Event loop: uvloop when installed (auto), or force one; 'ring' is asyncio on the io_uring ring.",
)
@option(
    "--io",
    type=click.Choice(IO_CHOICES),
    show_default=True,
    help="Socket I/O backend: io_uring where the kernel allows it, else epoll (auto), or force one.",
)
@option(
    "--ws",
    type=click.Choice(WS_CHOICES),
    show_default=True,
    help="WebSocket protocol: the core's own for every choice but 'none' (upgrade requests then go to the app "
    "as HTTP).",
)
@option(
    "--ws-max-size",
    type=int,
    show_default=True,
    help="Largest WebSocket message in bytes; a larger one closes the connection with 1009.",
)
@option(
    "--ws-max-queue",
    type=int,
    show_default=True,
    help="Received WebSocket messages held for the app before the socket stops being read.",
)
@option(
    "--ws-ping-interval",
    type=float,
    show_default=True,
    help="Seconds between WebSocket keepalive pings (0: none).",
)
@option(
    "--ws-ping-timeout",
    type=float,
    show_default=True,
    help="Seconds to wait for a pong before closing the WebSocket with 1011 (0: wait forever).",
)
@option(
    "--ws-per-message-deflate",
    type=bool,
    show_default=True,
    help="Offer permessage-deflate compression to WebSocket clients.",
)
@option(
    "--lifespan",
    type=click.Choice(LIFESPAN_MODES),
    show_default=True,
    help="Run the app's lifespan startup/shutdown: on, off, or on if the app supports it (auto).",
)
@option(
    "--interface",
    type=click.Choice([interface for interface in INTERFACES if interface != "wsgi"]),
    show_default=True,
    help="Application interface; auto tells ASGI 3 from ASGI 2 by inspecting the app. WSGI is not supported.",
)
@option(
    "--env-file",
    type=click.Path(exists=True),
    help="Load environment variables from this file (needs python-dotenv).",
)
@option(
    "--log-config",
    type=click.Path(exists=True),
    default=None,
    help="Logging configuration file: .ini, .json or .yaml.",
)
@option(
    "--log-level",
    type=click.Choice(list(LOG_LEVELS)),
    help="Log level of the server's loggers. [default: info]",
)
@option(
    "--access-log/--no-access-log",
    help="Log one line per response on the access logger.",
)
@option(
    "--use-colors/--no-use-colors",
    help="Colour the log output; by default only when writing to a terminal.",
)
@option(
    "--proxy-headers/--no-proxy-headers",
    help="Take the client address and scheme from X-Forwarded-For/-Proto on connections from "
    "--forwarded-allow-ips.",
)
@option(
    "--forwarded-allow-ips",
    type=str,
    help="Comma-separated addresses, networks or literals (a Unix socket path) whose proxy headers are "
    "trusted, '*' for all; defaults to $FORWARDED_ALLOW_IPS, else '127.0.0.1,::1'.",
)
@option(
    "--server-header/--no-server-header",
    help="Send a Server header with every response.",
)
@option(
    "--date-header/--no-date-header",
    help="Send a Date header with every response.",
)
@option(
    "--root-path",
    type=str,
    help="The ASGI root_path, for an app mounted below a URL prefix by a proxy.",
)
@option(
    "--limit-concurrency",
    type=int,
    help="Answer 503 to new requests while this many are in progress.",
)
@option(
    "--limit-max-requests",
    type=int,
    help="Stop the process after this many requests (a supervisor is expected to start a new one).",
)
@option(
    "--limit-max-requests-jitter",
    type=int,
    show_default=True,
    help="Add a random 0 to this many requests to --limit-max-requests per process, so workers do not "
    "all restart at once.",
)
@option(
    "--backlog",
    type=int,
    show_default=True,
    help="Connections the kernel may queue before they are accepted.",
)
@option(
    "--timeout-keep-alive",
    type=int,
    show_default=True,
    help="Close a keep-alive connection after this many seconds without a new request.",
)
@option(
    "--header-timeout",
    type=float,
    show_default=True,
    help="Answer 408 and close when a request's head takes longer than this many seconds to arrive.",
)
# Hidden: the tests shorten it; the default suits everyone else (see docs/security.md).
@option(
    "--timeout-send",
    "send_timeout",
    type=float,
    hidden=True,
    help="Close a connection whose client reads none of its response for this many seconds.",
)
@option(
    "--timeout-graceful-shutdown",
    type=int,
    help="On shutdown, wait at most this many seconds for in-flight requests, then cancel them. "
    "[default: wait for ever]",
)
@option("--ssl-keyfile", type=str, help="Serve HTTPS with this private key (PEM).")
@option(
    "--ssl-certfile",
    type=str,
    help="Serve HTTPS with this certificate chain (PEM, server certificate first); it may hold the key too.",
)
@option("--ssl-keyfile-password", type=str, help="Password of an encrypted --ssl-keyfile.")
@option(
    "--ssl-version",
    type=int,
    show_default=True,
    help="TLS versions, as the stdlib ssl module's PROTOCOL_* numbers: 17 or 2 allow what OpenSSL allows "
    "(TLS 1.2 and 1.3 by default); 3, 4, 5 allow only TLS 1.0, 1.1, 1.2.",
)
@option(
    "--ssl-cert-reqs",
    type=int,
    show_default=True,
    help="Client certificates, as the ssl module's CERT_* numbers: 0 not asked for, 1 verified if sent, "
    "2 required.",
)
@option(
    "--ssl-ca-certs", type=str, help="CA certificates (PEM) that verify client certificates."
)
@option(
    "--ssl-ciphers",
    type=str,
    help="OpenSSL cipher list for TLS 1.2 and older. [default: OpenSSL's]",
)
@option(
    "--timeout-worker-healthcheck",
    type=int,
    show_default=True,
    help="With --workers: replace a worker process that does not answer a health check within this many seconds.",
)
@option(
    "--header",
    "headers",
    multiple=True,
    callback=_parse_headers,
    help="A response header sent by default, as Name:Value. Repeat for more.",
)
@click.option(
    "--version",
    is_flag=True,
    callback=_print_version,
    expose_value=False,
    is_eager=True,
    help="Show the dbridge-asgi version and exit.",
)
@option(
    "--app-dir",
    default="",
    show_default=True,
    help="Look for APP in this directory (put first on sys.path); the working directory by default.",
)
@option(
    "--factory",
    is_flag=True,
    help="APP is a factory: call it with no arguments to get the ASGI app.",
)
def main(app: str, **options: Any) -> None:
    """Serve the ASGI application APP, given as "<module>:<attribute>" (for example main:app)."""
    log_config = options.pop("log_config")
    run(app, log_config=LOGGING_CONFIG if log_config is None else log_config, **options)


def run(app: Any, **options: Any) -> None:
    """Serves `app` (an ASGI app, or its "<module>:<attribute>" import string) until SIGINT/SIGTERM.

    Takes Config's keyword arguments, which are uvicorn.run's where the two share an option.
    Exits with 3 if the server could not start.
    """
    config = Config(app, **options)

    if config.reload:
        _run_reloader(config)
        return
    if config.workers > 1:
        _run_workers(config)
        return

    # Import before the loop exists, as uvicorn does: an unimportable app fails fast and
    # quietly (one ERROR line, exit 3).
    config.load_app()

    server = Server(config=config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if config.uds:
            _remove_unix_socket(config.uds)

    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _run_reloader(config: Config) -> None:
    """--reload: this process binds the socket, watches the files and restarts one server process."""
    if not isinstance(config.app, str):
        logger.warning("You must pass the application as an import string to enable 'reload'.")
        sys.exit(STARTUP_FAILURE)
    if config.workers > 1:
        logger.warning('"workers" flag is ignored when reloading is enabled.')
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        # uvicorn falls back to polling file stats; we ask for the package instead.
        logger.error("--reload needs the watchfiles package: pip install 'dbridge-asgi[standard]'.")
        sys.exit(STARTUP_FAILURE)
    logger.info("Will watch for changes in these directories: %s", sorted(map(str, config.reload_dirs)))
    sock = _bind_or_exit(config)
    try:
        Reloader(config, [sock]).run()
    finally:
        sock.close()
        if config.uds:
            _remove_unix_socket(config.uds)


def _bind_or_exit(config: Config) -> socket.socket:
    try:
        sock = config.bind_socket()
    except OSError as exc:
        logger.error("%s", exc)
        sys.exit(STARTUP_FAILURE)
    Server(config=config).log_started_message(sock)
    return sock


def _run_workers(config: Config) -> None:
    """--workers N: this process binds the socket and supervises N server processes on it."""
    if not isinstance(config.app, str):
        # The children import it themselves, as with uvicorn.
        logger.warning("You must pass the application as an import string to enable 'workers'.")
        sys.exit(STARTUP_FAILURE)
    sock = _bind_or_exit(config)
    try:
        exit_code = Supervisor(config, [sock]).run()
    finally:
        sock.close()
        if config.uds:
            _remove_unix_socket(config.uds)
    if exit_code != 0:
        sys.exit(exit_code)


def _remove_unix_socket(path: str) -> None:
    # Only a socket: a failed bind must not delete a file that was at the path before us.
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except OSError:
        pass
