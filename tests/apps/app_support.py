"""What the raw ASGI test apps share."""

from __future__ import annotations

from typing import Any


async def run_lifespan(receive: Any, send: Any) -> None:
    """A lifespan with nothing to set up: startup and shutdown complete at once."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
