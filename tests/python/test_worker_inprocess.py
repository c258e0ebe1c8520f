"""The core Worker driven in-process on a loop this test runs, for paths a real server
process cannot reach on demand: the app's task cancelled before its first step."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from dbridge_asgi import _core
from dbridge_asgi.loops import loop_ring, new_ring_loop

LOOPS = ["asyncio", "ring"] if _core.probe_io()["uring"] else ["asyncio"]


def make_loop(kind: str) -> asyncio.AbstractEventLoop:
    return new_ring_loop() if kind == "ring" else asyncio.new_event_loop()


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_task_cancelled_before_it_ran_still_settles_its_request(loop_kind: str) -> None:
    """Cancelling every task (as a shutdown does) can hit an app task before its first
    step; it never calls finish(). The connection still holds the exchange (the client
    waits), and when the connection goes the exchange settles itself: the worker's count
    of active requests, which the graceful drain waits on, comes back to zero."""
    loop = make_loop(loop_kind)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    created: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never runs
        raise AssertionError("the app must not run")

    async def never_started(*args: Any) -> None:  # pragma: no cover - cancelled first
        await asyncio.sleep(0)
        args[4].finish(None)

    def run_asgi(*args: Any) -> Any:
        # Cancel the task before its first step: this callback is queued before the
        # task's own. (An eagerly started task, 3.12+, runs to the sleep first and is
        # cancelled there: the same unfinished exchange.)
        coro = never_started(*args)
        created.append(coro)
        loop.call_soon(cancel_pending)
        return coro

    def cancel_pending() -> None:
        for task in asyncio.all_tasks(loop):
            if task.get_coro() in created:
                task.cancel()

    async def main() -> tuple[int, int, bytes]:
        worker = _core.Worker(app, loop, run_asgi, io="auto", ring=loop_ring(loop))
        worker.add_listener(listener.fileno())
        worker.start()
        try:
            reader, writer = await asyncio.open_connection(*listener.getsockname())
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await wait_until(lambda: created and all(coro.cr_frame is None for coro in created))
            during = worker.active_requests
            worker.close_all()
            after = worker.active_requests
            rest = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return during, after, rest
        finally:
            worker.detach()

    try:
        during, after, rest = loop.run_until_complete(main())
    finally:
        loop.close()
        listener.close()
    assert during == 1  # the cancelled task left its request open
    assert after == 0
    assert rest == b""  # closed without a response


def test_a_loop_that_overrides_create_task_is_asked_for_every_request_task() -> None:
    """The core makes request tasks itself only for the stock create_task(); a loop class
    with its own (instrumentation does this) is called for each one, as uvicorn calls it."""
    made: list[Any] = []

    class CountingLoop(asyncio.SelectorEventLoop):
        def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task:
            task = super().create_task(coro, **kwargs)
            made.append(task)
            return task

    loop = CountingLoop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run_asgi(app: Any, scope: Any, receive: Any, send: Any, exchange: Any) -> None:
        await app(scope, receive, send)
        exchange.finish(None)

    async def main() -> bytes:
        worker = _core.Worker(app, loop, run_asgi, io="auto")
        worker.add_listener(listener.fileno())
        worker.start()
        try:
            reader, writer = await asyncio.open_connection(*listener.getsockname())
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            response = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return response
        finally:
            worker.detach()

    try:
        before = len(made)
        response = loop.run_until_complete(main())
    finally:
        loop.close()
        listener.close()
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"ok"), response
    request_tasks = [t for t in made[before:] if t.get_coro().__name__ == "run_asgi"]
    assert len(request_tasks) == 1, made
