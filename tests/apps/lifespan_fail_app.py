"""Apps whose lifespan startup fails, for the exit-code tests (`--app-dir tests/apps`).

`reports_failure`: answers lifespan.startup with lifespan.startup.failed (any lifespan mode).
`raises`: raises during startup; with --lifespan on that is a failed startup too.
Both answer HTTP with 200, so a server that started anyway would be noticed.
"""

from __future__ import annotations

from typing import Any

FAILURE_MESSAGE = "lifespan-fail-app: the database is unreachable"


async def _ok(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def reports_failure(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": FAILURE_MESSAGE})
        return
    await _ok(send)


async def raises(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        raise RuntimeError(FAILURE_MESSAGE)
    await _ok(send)
