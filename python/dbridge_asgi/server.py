"""One server process: a persistent event loop, the lifespan, one core worker, the signals.

The life of a server, as uvicorn's `Server` lives it:

    load the app → lifespan startup → bind, start the worker → wait for SIGINT/SIGTERM →
    stop accepting → drain (bounded by timeout_graceful_shutdown) → close → lifespan shutdown

The loop is created once by `run()` and every request and the lifespan run on it
(DESIGN: persistent loops). `serve()` is the same life on a loop someone else runs (an
embedding program, the Gunicorn worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, Callable

import click

from dbridge_asgi import _core
from dbridge_asgi.config import STARTUP_FAILURE, Config
from dbridge_asgi.lifespan import Lifespan, create_lifespan
from dbridge_asgi.logging import ACCESS_LOG_FORMAT, ACCESS_LOGGER, ERROR_LOGGER
from dbridge_asgi.loops import loop_ring
from dbridge_asgi.protocol import run_asgi

HANDLED_SIGNALS = (
    signal.SIGINT,  # Ctrl+C
    signal.SIGTERM,  # kill, docker stop, systemd
)

# A debugging aid: with this variable set to a path, SIGUSR2 makes the server write its
# worker's counters (connections accepted/closed/open, requests active, timeouts) there as
# JSON. Nothing is written, and SIGUSR2 keeps its default action, when it is unset.
STATS_FILE_VARIABLE = "DBRIDGE_ASGI_DEBUG_STATS_FILE"

# While draining, how often to look at what is left.
# After the graceful timeout, how long apps told http.disconnect get to end before their
# tasks are cancelled.
DISCONNECT_GRACE = 1.0
DRAIN_POLL_INTERVAL = 0.1

logger = logging.getLogger(ERROR_LOGGER)


def _bold(text: str) -> str:
    return click.style(text, bold=True)


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = False
        self.worker: Any = None
        self.lifespan: Lifespan | None = None
        self._should_exit = False
        self._force_exit = False
        self._captured_signals: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._listeners: list[socket.socket] = []
        # The coroutine code objects of this server's request tasks, to find them at shutdown.
        self._request_codes: set[Any] = {run_asgi.__code__}

    # Setting either flag, from a signal handler, another task or another thread, wakes
    # the loop at once: nothing polls while the server runs.
    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        self._wake()

    @property
    def force_exit(self) -> bool:
        return self._force_exit

    @force_exit.setter
    def force_exit(self, value: bool) -> None:
        self._force_exit = value
        self._wake()

    def _wake(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wakeup.set)

    # ---- entry points ---------------------------------------------------------------

    def run(self, sockets: Sequence[socket.socket] | None = None) -> None:
        """Serves on a new event loop, created here once and closed when the server has stopped."""
        loop = self.config.get_loop_factory()()
        asyncio.set_event_loop(loop)
        ended_by: BaseException | None = None
        try:
            loop.run_until_complete(self.serve(sockets=sockets))
        except BaseException as exc:  # noqa: BLE001 - SystemExit(3), KeyboardInterrupt: re-raised below
            ended_by = exc
        # Outside the except block, so the tasks cancelled here do not carry the
        # KeyboardInterrupt as the context of their CancelledError tracebacks.
        try:
            _cancel_remaining_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
        if ended_by is not None:
            raise ended_by

    async def serve(self, sockets: Sequence[socket.socket] | None = None) -> None:
        """Serves on the running loop until SIGINT/SIGTERM or `should_exit`.

        `sockets`: listening sockets made by someone else (the Gunicorn worker); they are
        closed at the end, as uvicorn does. Without them the server binds its own.
        """
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        with self._capture_signals():
            await self._serve(sockets)

    async def _serve(self, sockets: Sequence[socket.socket] | None) -> None:
        config = self.config
        if not config.loaded:
            config.load()
        self.lifespan = create_lifespan(config.loaded_app, config.lifespan, config.asgi_version)

        process_id = os.getpid()
        logger.info(
            "Started server process [%d]",
            process_id,
            extra={"color_message": "Started server process [" + click.style("%d", fg="cyan") + "]"},
        )

        await self.startup(sockets=sockets)
        if not self.should_exit:
            await self.main_loop()
        if self.started:
            await self.shutdown()
            logger.info(
                "Finished server process [%d]",
                process_id,
                extra={"color_message": "Finished server process [" + click.style("%d", fg="cyan") + "]"},
            )

    # ---- startup --------------------------------------------------------------------

    async def startup(self, sockets: Sequence[socket.socket] | None = None) -> None:
        assert self.lifespan is not None
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)

        try:
            self.worker = self._create_worker()
            if sockets is not None:
                for sock in sockets:
                    # asyncio's create_server (uvicorn's path) listens on given sockets too.
                    sock.setblocking(False)
                    sock.listen(self.config.backlog)
                self._listeners = list(sockets)
            else:
                self._listeners = [self.config.bind_socket()]
            for sock in self._listeners:
                # Sockets others accept on too (worker processes, Gunicorn, an inherited --fd).
                shared = sockets is not None or self.config.fd is not None
                self.worker.add_listener(sock.fileno(), "http", shared=shared)
            self.worker.start()
        except (OSError, RuntimeError, ValueError) as exc:
            # As uvicorn on a failed bind: say why, let the app shut down, exit 3.
            logger.error("%s", exc)
            self._close_listeners()
            await self.lifespan.shutdown()
            sys.exit(STARTUP_FAILURE)

        if self.worker.on_ring_selector:
            logger.info("Using io_uring (the event loop's selector)")
        else:
            logger.info("Using %s", self.worker.backend_reason)
        if sockets is None:
            # With given sockets, whoever bound them has announced the address.
            self.log_started_message(self._listeners[0])
        self.started = True

    def _create_worker(self) -> Any:
        config = self.config
        assert self.lifespan is not None
        loop = asyncio.get_running_loop()
        return _core.Worker(
            config.loaded_app,
            loop,
            self._request_runner(),
            io=config.io,
            root_path=config.root_path,
            state=self.lifespan.state,
            access_log=self._access_log_callback(),
            keep_alive_timeout=float(config.timeout_keep_alive),
            header_timeout=float(config.header_timeout),
            limit_request_line=config.limit_request_line,
            limit_request_fields=config.limit_request_fields,
            limit_request_field_size=config.limit_request_field_size,
            send_timeout=float(config.send_timeout),
            server_header=config.sends_server_header,
            date_header=config.date_header,
            default_headers=config.encoded_headers,
            limit_concurrency=config.limit_concurrency or 0,
            warn=logger.warning,
            ring=loop_ring(loop),
            trusted_proxies=config.trusted_proxies(),
            reset_contextvars=config.reset_contextvars,
            scheme="https" if config.tls is not None else "http",
            tls=config.tls,
            ws=config.ws,
            ws_max_size=config.ws_max_size,
            ws_max_queue=config.ws_max_queue,
            ws_ping_interval=config.ws_ping_interval,
            ws_ping_timeout=config.ws_ping_timeout,
            ws_per_message_deflate=config.ws_per_message_deflate,
        )

    def _access_log_callback(self) -> Callable[..., None] | None:
        """The core's per-response hook, or None (no Python call per request) when nobody would see it.

        As uvicorn: no access log when --no-access-log emptied the logger's handlers. We also
        skip it when the logger is not enabled for INFO at start.
        """
        access_logger = logging.getLogger(ACCESS_LOGGER)
        if not (self.config.access_log and access_logger.hasHandlers()):
            return None
        if not access_logger.isEnabledFor(logging.INFO):
            return None
        # Called as (client, method, path_with_query, http_version, status).
        return functools.partial(access_logger.info, ACCESS_LOG_FORMAT)

    def _request_runner(self) -> Callable[..., Any]:
        """`run_asgi`, or with --limit-max-requests a version that counts requests and stops at the limit."""
        limit = self.config.limit_max_requests
        if limit is None:
            return run_asgi
        # uvicorn: a random 0..jitter more per process, so workers started together do not
        # all restart together.
        limit += random.randint(0, self.config.limit_max_requests_jitter)
        served = 0

        async def run_asgi_counted(app: Any, scope: Any, receive: Any, send: Any, exchange: Any) -> None:
            nonlocal served
            served += 1
            if served == limit:
                logger.info("Maximum request limit of %d exceeded. Terminating process.", limit)
                self.should_exit = True
            if served >= limit:
                # This process is going away: each client learns with its response that the
                # connection closes (RFC 9112 §9.6) rather than by a close racing its next request.
                send = _closing_send(send)
            await run_asgi(app, scope, receive, send, exchange)

        self._request_codes.add(run_asgi_counted.__code__)
        return run_asgi_counted

    def log_started_message(self, sock: socket.socket) -> None:
        config = self.config
        if config.fd is not None:
            logger.info(
                "dbridge-asgi running on socket %s (Press CTRL+C to quit)",
                sock.getsockname(),
                extra={
                    "color_message": "dbridge-asgi running on socket "
                    + _bold("%s")
                    + " (Press CTRL+C to quit)"
                },
            )
        elif config.uds is not None:
            logger.info(
                "dbridge-asgi running on unix socket %s (Press CTRL+C to quit)",
                config.uds,
                extra={
                    "color_message": "dbridge-asgi running on unix socket "
                    + _bold("%s")
                    + " (Press CTRL+C to quit)"
                },
            )
        else:
            host = config.host or "0.0.0.0"
            address_format = "%s://[%s]:%d" if ":" in host else "%s://%s:%d"
            # Port 0 asked the kernel for a free port: show the one it gave.
            port = sock.getsockname()[1]
            logger.info(
                f"dbridge-asgi running on {address_format} (Press CTRL+C to quit)",
                "https" if config.tls is not None else "http",
                host,
                port,
                extra={
                    "color_message": "dbridge-asgi running on "
                    + _bold(address_format)
                    + " (Press CTRL+C to quit)"
                },
            )

    # ---- running --------------------------------------------------------------------

    async def main_loop(self) -> None:
        assert self._wakeup is not None
        while not self.should_exit:
            await self._wakeup.wait()
            self._wakeup.clear()

    # ---- shutdown -------------------------------------------------------------------

    async def shutdown(self) -> None:
        """uvicorn's graceful shutdown, on the core: stop accepting, drain, close, lifespan shutdown.

        `worker.shutdown()` comes before the wait, as uvicorn calls each connection's
        shutdown() before waiting: idle keep-alive connections close now, busy ones after
        their current response, and streaming handlers hear that the client is gone; so the
        wait is for work already started, not for new requests on old connections.
        """
        logger.info("Shutting down")
        worker = self.worker
        worker.stop_accepting()
        worker.shutdown()

        if not await self._drain():
            # Out of time. Responses under way are cut first: an app streaming one
            # (server-sent events, a long download) hears http.disconnect from receive()
            # and can end on its own. Apps that have not started their response are
            # cancelled below, and their clients get a 500, as with uvicorn.
            worker.disconnect_responding()
            tasks = self._request_tasks()
            if tasks:
                await asyncio.wait(tasks, timeout=DISCONNECT_GRACE)
            tasks = [task for task in tasks if not task.done()]
            if tasks:
                logger.error("Cancel %s running task(s), timeout graceful shutdown exceeded", len(tasks))
                for task in tasks:
                    task.cancel("Task cancelled, timeout graceful shutdown exceeded")
                await asyncio.wait(tasks, timeout=DRAIN_POLL_INTERVAL)
                await asyncio.sleep(0)

        worker.close_all()
        # Off the loop: a loop that lives on (serve() in someone else's program) keeps
        # no reader or timer of ours.
        worker.detach()
        self._close_listeners()

        assert self.lifespan is not None
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drain(self) -> bool:
        """Waits for in-flight responses, then for app tasks still running after their response
        (background tasks). False if timeout_graceful_shutdown ran out first.

        A second Ctrl+C (force_exit) ends the wait at once, as in uvicorn.
        """
        loop = asyncio.get_running_loop()
        timeout = self.config.timeout_graceful_shutdown
        deadline = None if timeout is None else loop.time() + timeout
        worker = self.worker

        async def wait_until(done: Callable[[], bool], message: str) -> bool:
            if done() or self.force_exit:
                return True
            logger.info(message)
            while not done() and not self.force_exit:
                delay = DRAIN_POLL_INTERVAL
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return False
                    delay = min(delay, remaining)
                await self._sleep_unless_woken(delay)
            return True

        if not await wait_until(
            lambda: worker.active_requests == 0, "Waiting for connections to close. (CTRL+C to force quit)"
        ):
            return False
        return await wait_until(
            lambda: not self._request_tasks(),
            "Waiting for background tasks to complete. (CTRL+C to force quit)",
        )

    async def _sleep_unless_woken(self, delay: float) -> None:
        assert self._wakeup is not None
        self._wakeup.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), delay)

    def _request_tasks(self) -> list[asyncio.Task[Any]]:
        """The app calls still running: tasks whose coroutine is our run_asgi.

        Found by looking, at shutdown only, so the request path keeps no registry.
        """
        codes = self._request_codes
        tasks = []
        for task in asyncio.all_tasks():
            coro = task.get_coro()
            if getattr(coro, "cr_code", None) in codes and not task.done():
                tasks.append(task)
        return tasks

    def _close_listeners(self) -> None:
        # Closed only after the worker stopped and closed its connections: the core may
        # still have an accept in flight on the fd until then.
        for sock in self._listeners:
            sock.close()
        self._listeners = []

    # ---- signals --------------------------------------------------------------------

    @contextlib.contextmanager
    def _capture_signals(self) -> Iterator[None]:
        # Python runs signal handlers on the main thread only.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        # signal.signal rather than loop.add_signal_handler, as uvicorn: the previous
        # handlers come back afterwards, whoever installed them.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        stats_file = os.environ.get(STATS_FILE_VARIABLE)
        if stats_file:
            previous[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, self._stats_request_handler(stats_file))
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        # uvicorn re-raises each captured signal so the program around serve() reacts to
        # it as it would have (KeyboardInterrupt for Ctrl+C). Only to Python handlers,
        # though: re-raising into SIG_DFL would kill a process that has just shut down
        # cleanly (uvicorn exits 143 on SIGTERM; DESIGN wants 0).
        for sig in reversed(self._captured_signals):
            if callable(previous[sig]):
                signal.raise_signal(sig)

    def _stats_request_handler(self, path: str) -> Callable[[int, FrameType | None], None]:
        def write_stats() -> None:
            stats = self.worker.stats() if self.worker is not None else {}
            # Whole or not at all: a reader polling the file never sees half of it.
            partial = f"{path}.{os.getpid()}.tmp"
            with open(partial, "w") as out:
                json.dump(stats, out)
            os.replace(partial, path)

        def on_signal(sig: int, frame: FrameType | None) -> None:
            # The worker belongs to the loop: read it there, between two of its callbacks.
            if self._loop is not None:
                self._loop.call_soon_threadsafe(write_stats)

        return on_signal

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._captured_signals.append(sig)
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def _closing_send(send: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """`send` with "connection: close" added to the response head (the core then closes after it)."""

    def send_closing(message: dict[str, Any]) -> Any:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
        return send(message)

    return send_closing


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does before closing its loop: cancel what is left and let it unwind."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
