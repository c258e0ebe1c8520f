"""The `dbridge-asgi` command and `run()`, uvicorn's two front doors.

Options keep uvicorn's names, defaults and meaning, so a `uvicorn main:app ...` command
line works with the program name changed. Each option can also come from the environment
as DBRIDGE_ASGI_<NAME> or, for scripts and container images written for uvicorn,
UVICORN_<NAME> (the first one set wins). <NAME> is the option's parameter name in upper
case, as uvicorn's auto_envvar_prefix makes it: UVICORN_PORT, UVICORN_HEADERS.
"""

from __future__ import annotations

import logging
import os
import platform
import stat
import sys
from typing import Any, Callable

import click

from dbridge_asgi.config import (
    INTERFACES,
    IO_CHOICES,
    LIFESPAN_MODES,
    LOOP_CHOICES,
    STARTUP_FAILURE,
    Config,
)
from dbridge_asgi.logging import ERROR_LOGGER, LOG_LEVELS, LOGGING_CONFIG
from dbridge_asgi.server import Server

logger = logging.getLogger(ERROR_LOGGER)

ENV_PREFIXES = ("DBRIDGE_ASGI", "UVICORN")


def _envvars(name: str) -> list[str]:
    return [f"{prefix}_{name.upper()}" for prefix in ENV_PREFIXES]


def option(*param_decls: str, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """click.option with the two environment variables named after the option's parameter."""
    name = click.Option(param_decls).name
    assert name is not None
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
@option("--host", type=str, default="127.0.0.1", show_default=True, help="Listen on this address.")
@option(
    "--port",
    type=int,
    default=8000,
    show_default=True,
    help="Listen on this TCP port; 0 lets the kernel pick a free one.",
)
@option("--uds", type=str, default=None, help="Listen on this Unix domain socket path instead of host:port.")
@option(
    "--fd",
    type=int,
    default=None,
    help="Serve on an already-bound socket inherited as this file descriptor (socket activation, supervisors).",
)
@option(
    "--reload",
    is_flag=True,
    default=False,
    help="Restart on code changes. Not supported yet: accepted, and the server runs without it.",
)
@option(
    "--workers",
    type=int,
    default=None,
    help="Number of worker processes; defaults to $WEB_CONCURRENCY, else 1. Only 1 is supported yet.",
)
@option(
    "--loop",
    type=click.Choice(LOOP_CHOICES),
    default="auto",
    show_default=True,
    help="Event loop: uvloop when installed (auto), or force one; 'ring' is asyncio on the io_uring ring.",
)
@option(
    "--io",
    type=click.Choice(IO_CHOICES),
    default="auto",
    show_default=True,
    help="Socket I/O backend: io_uring where the kernel allows it, else epoll (auto), or force one.",
)
@option(
    "--lifespan",
    type=click.Choice(LIFESPAN_MODES),
    default="auto",
    show_default=True,
    help="Run the app's lifespan startup/shutdown: on, off, or on if the app supports it (auto).",
)
@option(
    "--interface",
    type=click.Choice([interface for interface in INTERFACES if interface != "wsgi"]),
    default="auto",
    show_default=True,
    help="Application interface; auto tells ASGI 3 from ASGI 2 by inspecting the app. WSGI is not supported.",
)
@option(
    "--env-file",
    type=click.Path(exists=True),
    default=None,
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
    default=None,
    help="Log level of the server's loggers. [default: info]",
)
@option(
    "--access-log/--no-access-log",
    default=True,
    help="Log one line per response on the access logger.",
)
@option(
    "--use-colors/--no-use-colors",
    default=None,
    help="Colour the log output; by default only when writing to a terminal.",
)
@option(
    "--proxy-headers/--no-proxy-headers",
    default=True,
    help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips for the client address and scheme. "
    "Not applied yet.",
)
@option(
    "--forwarded-allow-ips",
    type=str,
    default=None,
    help="Comma-separated addresses or networks whose proxy headers are trusted; defaults to "
    "$FORWARDED_ALLOW_IPS, else '127.0.0.1,::1'.",
)
@option(
    "--server-header/--no-server-header",
    default=True,
    help="Send a Server header with every response.",
)
@option(
    "--date-header/--no-date-header",
    default=True,
    help="Send a Date header with every response.",
)
@option(
    "--root-path",
    type=str,
    default="",
    help="The ASGI root_path, for an app mounted below a URL prefix by a proxy.",
)
@option(
    "--limit-concurrency",
    type=int,
    default=None,
    help="Answer 503 to new requests while this many are in progress.",
)
@option(
    "--limit-max-requests",
    type=int,
    default=None,
    help="Stop the process after this many requests (a supervisor is expected to start a new one).",
)
@option(
    "--backlog",
    type=int,
    default=2048,
    show_default=True,
    help="Connections the kernel may queue before they are accepted.",
)
@option(
    "--timeout-keep-alive",
    type=int,
    default=5,
    show_default=True,
    help="Close a keep-alive connection after this many seconds without a new request.",
)
@option(
    "--header-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Answer 408 and close when a request's head takes longer than this many seconds to arrive.",
)
# Hidden: the tests shorten it; the default suits everyone else (see docs/security.md).
@option(
    "--timeout-send",
    "send_timeout",
    type=float,
    default=60.0,
    hidden=True,
    help="Close a connection whose client reads none of its response for this many seconds.",
)
@option(
    "--timeout-graceful-shutdown",
    type=int,
    default=None,
    help="On shutdown, wait at most this many seconds for in-flight requests, then cancel them. "
    "[default: wait for ever]",
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
    default=False,
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
        logger.warning("--reload is not supported yet; serving without it.")
    if config.workers > 1:
        source = " (from $WEB_CONCURRENCY)" if config.workers_from_environment else ""
        logger.error(
            "--workers > 1 is not supported yet: got %d%s. Run one process, or several behind a "
            "load balancer, for now.",
            config.workers,
            source,
        )
        sys.exit(STARTUP_FAILURE)

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


def _remove_unix_socket(path: str) -> None:
    # Only a socket: a failed bind must not delete a file that was at the path before us.
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except OSError:
        pass
