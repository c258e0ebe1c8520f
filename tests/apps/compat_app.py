"""Apps for the uvicorn-option tests (tests/python/test_compatibility.py): each answers what
the option under test changed, so the test sees the effect from outside.

    app           JSON: the running loop's class, COMPAT_FROM_ENV_FILE, the scope's asgi
                  version; "/hold" streams one chunk and then waits for http.disconnect
    make_app      a factory (--factory) whose app answers "from-factory"
    Asgi2App      an ASGI 2 class (--interface asgi2) that answers "asgi2"
"""

import asyncio
import json
import os


async def _answer(send, body, content_type=b"text/plain"):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def _hold(receive, send):
    # Occupies one request slot until the client goes away (for --limit-concurrency).
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"holding", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/hold":
        await _hold(receive, send)
        return
    loop = asyncio.get_running_loop()
    facts = {
        "loop": f"{type(loop).__module__}.{type(loop).__name__}",
        "env": os.environ.get("COMPAT_FROM_ENV_FILE"),
        "selector": type(getattr(loop, "_selector", None)).__name__,
        "asgi": scope["asgi"].get("version"),
    }
    await _answer(send, json.dumps(facts).encode(), b"application/json")


def make_app():
    async def factory_app(scope, receive, send):
        if scope["type"] == "http":
            await _answer(send, b"from-factory")

    return factory_app


class Asgi2App:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] == "http":
            await _answer(send, b"asgi2")
