"""The coroutine the core runs, as an asyncio Task, for every request it hands to the app.

The C++ side owns everything about the exchange but the app call itself: it builds the
scope, implements receive/send, and once told how the app ended, answers 500 if nothing
was sent or closes the connection if a response was under way. The one thing left here is
the part that must be Python: awaiting the app and logging its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from dbridge_asgi.logging import ERROR_LOGGER

logger = logging.getLogger(ERROR_LOGGER)


async def run_asgi(app: Any, scope: Any, receive: Any, send: Any, exchange: Any) -> None:
    """Awaits `app(scope, receive, send)` and reports the outcome with exactly one exchange.finish().

    Like uvicorn, every BaseException is caught, logged with its traceback and not re-raised,
    CancelledError included: the task ends either way, and the core needs to hear about it.
    The "returned without starting/completing response" warnings are the core's to log.
    """
    try:
        await app(scope, receive, send)
    except BaseException as exc:
        logger.error("Exception in ASGI application\n", exc_info=exc)
        exchange.finish(exc)
    else:
        exchange.finish(None)
