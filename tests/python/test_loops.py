"""The io_uring ring as asyncio's selector (dbridge_asgi.loops), without a server.

The selector must behave as selectors.EpollSelector does for everything asyncio and the
libraries apps use put on a loop: level-triggered readiness, modify/unregister, timeouts,
wake-ups from other threads, signals, subprocesses, streams, executors.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import socket
import sys
import threading
import time

import pytest

from dbridge_asgi import _core
from dbridge_asgi.loops import RingSelector, loop_ring, new_ring_loop

pytestmark = pytest.mark.skipif(not _core.probe_io()["uring"], reason="io_uring is not usable here")


def test_readiness_is_level_triggered() -> None:
    selector = RingSelector()
    a, b = socket.socketpair()
    try:
        key = selector.register(a, selectors.EVENT_READ, "data")
        assert selector.select(0) == []
        b.send(b"x")
        events = selector.select(1.0)
        assert events == [(key, selectors.EVENT_READ)]
        assert events[0][0].data == "data"
        # Not read: reported again, as a level-triggered selector does.
        assert selector.select(1.0) == [(key, selectors.EVENT_READ)]
        a.recv(1)
        assert selector.select(0) == []
    finally:
        selector.close()
        a.close()
        b.close()


def test_write_readiness_and_modify() -> None:
    selector = RingSelector()
    a, b = socket.socketpair()
    try:
        selector.register(a, selectors.EVENT_READ, "r")
        assert selector.select(0) == []
        key = selector.modify(a, selectors.EVENT_READ | selectors.EVENT_WRITE, "rw")
        events = selector.select(1.0)
        assert events == [(key, selectors.EVENT_WRITE)]
        # Only the data changes: the new key is what select() hands back.
        key = selector.modify(a, selectors.EVENT_READ | selectors.EVENT_WRITE, "rw2")
        events = selector.select(1.0)
        assert events == [(key, selectors.EVENT_WRITE)] and events[0][0].data == "rw2"
        b.send(b"y")
        events = selector.select(1.0)
        assert events == [(key, selectors.EVENT_READ | selectors.EVENT_WRITE)]
    finally:
        selector.close()
        a.close()
        b.close()


def test_unregister_stops_reports_and_reregister_works() -> None:
    selector = RingSelector()
    a, b = socket.socketpair()
    try:
        selector.register(a, selectors.EVENT_READ)
        assert selector.select(0) == []  # the poll is now armed in the kernel
        selector.unregister(a)
        assert selector.ring.watched == 0
        b.send(b"z")
        assert selector.select(0.05) == []
        key = selector.register(a, selectors.EVENT_READ)
        assert selector.select(1.0) == [(key, selectors.EVENT_READ)]
        with pytest.raises(KeyError):
            selector.unregister(b)
    finally:
        selector.close()
        a.close()
        b.close()


def test_timeout_is_honoured() -> None:
    selector = RingSelector()
    try:
        started = time.monotonic()
        assert selector.select(0.05) == []
        # The wait happened (no spin to zero); no upper bound asserted on a noisy machine.
        assert time.monotonic() - started >= 0.045
    finally:
        selector.close()


def test_hang_up_wakes_a_reader() -> None:
    selector = RingSelector()
    a, b = socket.socketpair()
    try:
        key = selector.register(a, selectors.EVENT_READ)
        b.close()
        assert selector.select(1.0) == [(key, selectors.EVENT_READ)]
        assert a.recv(1) == b""
    finally:
        selector.close()
        a.close()


def test_the_gil_is_released_while_waiting() -> None:
    selector = RingSelector()
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        time.sleep(0.01)
        before = ticks
        selector.select(0.3)
        # Python code ran on the other thread while this one sat in the ring.
        assert ticks - before > 1000
    finally:
        stop.set()
        thread.join()
        selector.close()


async def _echo_round_trip() -> bytes:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(4000))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping" * 1000)
    await writer.drain()
    data = await reader.read()
    writer.close()
    server.close()
    await server.wait_closed()
    return data


def test_asyncio_streams_run_on_the_ring_loop() -> None:
    loop = new_ring_loop()
    try:
        assert loop_ring(loop) is not None
        assert loop.run_until_complete(_echo_round_trip()) == b"ping" * 1000
    finally:
        loop.close()


def test_wake_up_from_another_thread_and_executor() -> None:
    loop = new_ring_loop()

    async def main() -> tuple[str, int]:
        future = loop.create_future()
        threading.Timer(0.05, lambda: loop.call_soon_threadsafe(future.set_result, "woken")).start()
        result = await asyncio.wait_for(future, 10)
        value = await loop.run_in_executor(None, lambda: 6 * 7)
        return result, value

    try:
        assert loop.run_until_complete(main()) == ("woken", 42)
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@pytest.mark.skipif(sys.platform != "linux", reason="Linux signals")
def test_signal_handler_and_subprocess() -> None:
    loop = new_ring_loop()

    async def main() -> tuple[bool, bytes]:
        got = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, got.set)
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(got.wait(), 10)
        loop.remove_signal_handler(signal.SIGUSR1)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('child')", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(process.communicate(), 30)
        return got.is_set(), out

    asyncio.set_event_loop(loop)
    try:
        assert loop.run_until_complete(main()) == (True, b"child\n")
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_a_worker_on_the_ring_loop_shares_its_reactor() -> None:
    loop = new_ring_loop()

    async def app(scope, receive, send):  # pragma: no cover - never called
        raise AssertionError

    async def run_asgi(*args):  # pragma: no cover - never called
        raise AssertionError

    try:
        worker = _core.Worker(app, loop, run_asgi, ring=loop_ring(loop))
        assert worker.on_ring_selector
        assert worker.backend == "io_uring"
        del worker
        stock = asyncio.new_event_loop()
        try:
            assert not _core.Worker(app, stock, run_asgi).on_ring_selector
        finally:
            stock.close()
    finally:
        loop.close()
