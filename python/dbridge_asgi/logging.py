"""Log formatting and the default logging configuration.

The shape is uvicorn's, so a log config written for uvicorn needs only its logger names
changed: a "default" formatter for the server's own lines on stderr, an "access"
formatter for one line per response on stdout, and a TRACE level (5) below DEBUG.
Loggers: "dbridge_asgi" (parent, owns the handler), "dbridge_asgi.error" (everything the
server says), "dbridge_asgi.access" (one line per completed response).
"""

from __future__ import annotations

import copy
import http
import logging
import sys
from typing import Any

import click

TRACE_LOG_LEVEL = 5

LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE_LOG_LEVEL,
}

ERROR_LOGGER = "dbridge_asgi.error"
ACCESS_LOGGER = "dbridge_asgi.access"

# The message the access logger is called with; AccessFormatter reads the arguments back
# from the record. Same format and argument order as uvicorn's protocols, so a custom
# formatter written against uvicorn's record.args keeps working.
ACCESS_LOG_FORMAT = '%s - "%s %s HTTP/%s" %d'

LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "dbridge_asgi.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "dbridge_asgi.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            "use_colors": None,
        },
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "dbridge_asgi": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "dbridge_asgi.error": {"level": "INFO"},
        "dbridge_asgi.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def default_logging_config(use_colors: bool | None = None) -> dict[str, Any]:
    """A fresh copy of LOGGING_CONFIG, with colours forced on or off when use_colors is a bool.

    uvicorn writes use_colors into its module-level dict; a copy keeps one Config from
    changing the next one's defaults.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    if use_colors in (True, False):
        config["formatters"]["default"]["use_colors"] = use_colors
        config["formatters"]["access"]["use_colors"] = use_colors
    return config


_LEVEL_COLOURS: dict[int, str] = {
    TRACE_LOG_LEVEL: "blue",
    logging.DEBUG: "cyan",
    logging.INFO: "green",
    logging.WARNING: "yellow",
    logging.ERROR: "red",
    logging.CRITICAL: "bright_red",
}

# By the first digit of the status code.
_STATUS_COLOURS: dict[int, str] = {1: "bright_white", 2: "green", 3: "yellow", 4: "red", 5: "bright_red"}


class ColourizedFormatter(logging.Formatter):
    """Adds %(levelprefix)s ("INFO:     ", the level padded to a fixed width, coloured on a tty).

    A record logged with extra={"color_message": ...} shows that message instead when colours
    are on (used to make the address in the startup line bold).
    """

    stream_name = "stderr"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        use_colors: bool | None = None,
    ) -> None:
        if use_colors in (True, False):
            self.use_colors = use_colors
        else:
            # uvicorn asks stdout for both formatters; we ask the stream each formatter's
            # default handler writes to, so `2>file` alone turns the escapes off.
            stream = getattr(sys, self.stream_name, None)
            self.use_colors = bool(stream is not None and stream.isatty())
        super().__init__(fmt=fmt, datefmt=datefmt, style=style)  # type: ignore[arg-type]

    def color_level_name(self, level_name: str, level_no: int) -> str:
        colour = _LEVEL_COLOURS.get(level_no)
        return click.style(level_name, fg=colour) if colour else level_name

    def formatMessage(self, record: logging.LogRecord) -> str:
        record = copy.copy(record)
        level_name = record.levelname
        padding = " " * max(0, 8 - len(level_name))
        if self.use_colors:
            level_name = self.color_level_name(level_name, record.levelno)
            color_message = record.__dict__.get("color_message")
            if color_message is not None:
                record.msg = color_message
                record.message = record.getMessage()
        record.levelprefix = f"{level_name}:{padding}"
        return super().formatMessage(record)


class DefaultFormatter(ColourizedFormatter):
    stream_name = "stderr"


class AccessFormatter(ColourizedFormatter):
    """Renders an access record as `client - "METHOD /path HTTP/1.1" 200 OK`."""

    stream_name = "stdout"

    def get_status_code(self, status_code: int) -> str:
        try:
            phrase = http.HTTPStatus(status_code).phrase
        except ValueError:
            phrase = ""
        text = f"{status_code} {phrase}"
        if self.use_colors:
            colour = _STATUS_COLOURS.get(status_code // 100)
            if colour is not None:
                return click.style(text, fg=colour)
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):
            # Not one of ours (someone logged to the access logger by hand): plain format.
            record = copy.copy(record)
            record.__dict__.setdefault("client_addr", "-")
            record.__dict__.setdefault("request_line", record.getMessage())
            record.__dict__.setdefault("status_code", "-")
            return super().formatMessage(record)
        client_addr, method, path, http_version, status_code = args
        request_line = f"{method} {path} HTTP/{http_version}"
        if self.use_colors:
            request_line = click.style(request_line, bold=True)
        record = copy.copy(record)
        record.__dict__.update(
            client_addr=client_addr,
            request_line=request_line,
            status_code=self.get_status_code(int(status_code)),
        )
        return super().formatMessage(record)
