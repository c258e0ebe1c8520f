"""`--log-level trace`: every ASGI message of every request on the `dbridge_asgi.asgi`
logger, as uvicorn's trace level shows them (bodies and headers as placeholders, never
their content). Only wrapped around the app at trace level: no cost otherwise."""

from __future__ import annotations

import itertools
import logging
from typing import Any, Callable

from dbridge_asgi.logging import TRACE_LOG_LEVEL

ASGI_LOGGER = "dbridge_asgi.asgi"

# Contents a trace line must not show, and how each is summarized instead.
_SUMMARIES = {"body": "<{} bytes>", "bytes": "<{} bytes>", "text": "<{} chars>", "headers": "<...>"}


def summarized(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of an ASGI message or scope with bodies, texts and headers replaced by their size."""
    shown = dict(message)
    for key, template in _SUMMARIES.items():
        value = message.get(key)
        if value is not None:
            shown[key] = template.format(len(value))
    return shown


class MessageLogger:
    """An ASGI app that traces what passes between the server and `app`."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self._numbers = itertools.count(1)
        self._log = logging.getLogger(ASGI_LOGGER)

    def _trace(self, text: str, *args: Any) -> None:
        self._log.log(TRACE_LOG_LEVEL, text, *args)

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        number = next(self._numbers)
        client = scope.get("client")
        who = f"{client[0]}:{client[1]} - ASGI" if client else "ASGI"

        async def traced_receive() -> dict[str, Any]:
            message = await receive()
            self._trace("%s [%d] Receive %s", who, number, summarized(message))
            return message

        async def traced_send(message: dict[str, Any]) -> None:
            self._trace("%s [%d] Send %s", who, number, summarized(message))
            await send(message)

        self._trace("%s [%d] Started scope=%s", who, number, summarized(scope))
        try:
            await self.app(scope, traced_receive, traced_send)
        except BaseException:
            self._trace("%s [%d] Raised exception", who, number)
            raise
        self._trace("%s [%d] Completed", who, number)
