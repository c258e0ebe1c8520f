"""The ASGI lifespan protocol: startup before the first request, shutdown after the last.

Semantics and log lines are uvicorn's (`uvicorn/lifespan/on.py`, `off.py`):

* "auto": an app that raises on the lifespan scope before completing startup does not
  support lifespan; say so at INFO and serve anyway.
* "on": the same exception is an error, and the server does not start.
* "off": the app never sees a lifespan scope.

`state` is the dict the app fills during startup (scope["state"]); the core gives every
request scope a shallow copy of it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Union

from dbridge_asgi.logging import ERROR_LOGGER

logger = logging.getLogger(ERROR_LOGGER)

STATE_TRANSITION_ERROR = "Got invalid state transition on lifespan protocol."


class LifespanOn:
    """Runs the app's lifespan task on the running loop and drives it with startup/shutdown events.

    `should_exit` is True after a failed startup or shutdown: the caller stops (exit code 3
    after a failed startup).
    """

    def __init__(self, app: Any, mode: str = "auto", asgi_version: str = "3.0") -> None:
        self.app = app
        self.mode = mode
        self.asgi_version = asgi_version
        self.state: dict[str, Any] = {}
        self.should_exit = False
        self.startup_failed = False
        self.shutdown_failed = False
        # Set when the app's lifespan call ended by raising: from then on it cannot hear us.
        self.error_occurred = False
        self._receive_queue: asyncio.Queue | None = None
        self._startup_done: asyncio.Event | None = None
        self._shutdown_done: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def startup(self) -> None:
        logger.info("Waiting for application startup.")
        # Created here, on the running loop (Python 3.9 binds them at construction).
        self._receive_queue = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        # Kept on self: the loop holds tasks only weakly.
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._receive_queue.put({"type": "lifespan.startup"})
        await self._startup_done.wait()

        if self.startup_failed or (self.error_occurred and self.mode == "on"):
            logger.error("Application startup failed. Exiting.")
            self.should_exit = True
        else:
            logger.info("Application startup complete.")

    async def shutdown(self) -> None:
        if self.error_occurred or self._receive_queue is None:
            return
        assert self._shutdown_done is not None
        logger.info("Waiting for application shutdown.")
        await self._receive_queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()

        if self.shutdown_failed or (self.error_occurred and self.mode == "on"):
            logger.error("Application shutdown failed. Exiting.")
            self.should_exit = True
        else:
            logger.info("Application shutdown complete.")

    async def _main(self) -> None:
        assert self._startup_done is not None and self._shutdown_done is not None
        scope = {
            "type": "lifespan",
            "asgi": {"version": self.asgi_version, "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:
            self.error_occurred = True
            # The app reported its failure itself (and we logged its message): nothing to add.
            if self.startup_failed or self.shutdown_failed:
                return
            if isinstance(exc, asyncio.CancelledError) and self._startup_done.is_set():
                # The loop is being torn down without a lifespan shutdown (a forced exit,
                # second Ctrl+C): not a sign of an app without lifespan support.
                return
            if self.mode == "auto":
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
            else:
                logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
        finally:
            # Whatever happened, nobody waits on an event that will never come.
            self._startup_done.set()
            self._shutdown_done.set()

    async def receive(self) -> dict[str, Any]:
        assert self._receive_queue is not None
        return await self._receive_queue.get()

    async def send(self, message: dict[str, Any]) -> None:
        assert self._startup_done is not None and self._shutdown_done is not None
        message_type = message["type"]
        if message_type in ("lifespan.startup.complete", "lifespan.startup.failed"):
            assert not self._startup_done.is_set(), STATE_TRANSITION_ERROR
            assert not self._shutdown_done.is_set(), STATE_TRANSITION_ERROR
            if message_type == "lifespan.startup.failed":
                self.startup_failed = True
                if message.get("message"):
                    logger.error(message["message"])
            self._startup_done.set()
        elif message_type in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            assert self._startup_done.is_set(), STATE_TRANSITION_ERROR
            assert not self._shutdown_done.is_set(), STATE_TRANSITION_ERROR
            if message_type == "lifespan.shutdown.failed":
                self.shutdown_failed = True
                if message.get("message"):
                    logger.error(message["message"])
            self._shutdown_done.set()
        else:
            raise AssertionError(f"Unexpected message type on the lifespan protocol: {message_type!r}")


class LifespanOff:
    """--lifespan off: the app is never called with a lifespan scope; its state stays empty."""

    def __init__(self, app: Any = None, mode: str = "off", asgi_version: str = "3.0") -> None:
        self.state: dict[str, Any] = {}
        self.should_exit = False

    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


Lifespan = Union[LifespanOn, LifespanOff]


def create_lifespan(app: Any, mode: str, asgi_version: str = "3.0") -> Lifespan:
    if mode == "off":
        return LifespanOff()
    if mode in ("auto", "on"):
        return LifespanOn(app, mode=mode, asgi_version=asgi_version)
    raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {mode!r}")
