"""A raw ASGI app for the --workers tests: which process answered, and a slow request.

GET /pid answers this process's PID; GET /slow prints a marker to stderr, then answers
after SLOW_SECONDS (an in-flight request to shut down gracefully under).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

SLOW_SECONDS = 1.5
SLOW_STARTED = "workers-app: slow request started"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        print(SLOW_STARTED, file=sys.stderr, flush=True)
        await asyncio.sleep(SLOW_SECONDS)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
