"""A raw ASGI app whose lifespan installs an asyncio task factory, as instrumentation
libraries do: every request's task must come from it.

    /          JSON: the type and name of the task running this request, and how many
               tasks the factory has made so far
    /refuse    makes the factory raise RuntimeError("task factory refused") for the next
               request's task, as a broken instrumentation library would
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class CountedTask(asyncio.Task):
    made = 0
    refuse_next = False


def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task:
    if CountedTask.refuse_next:
        CountedTask.refuse_next = False
        raise RuntimeError("task factory refused")
    CountedTask.made += 1
    return CountedTask(coro, loop=loop, **kwargs)


async def app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                asyncio.get_running_loop().set_task_factory(factory)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/refuse":
        CountedTask.refuse_next = True
    task = asyncio.current_task()
    body = json.dumps({"task_type": type(task).__name__, "made": CountedTask.made}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
