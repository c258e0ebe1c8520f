"""The lifespan protocol with uvicorn's semantics (`uvicorn/lifespan/on.py`): modes, failures, state, log lines."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import pytest
from dbridge_asgi.lifespan import LifespanOff, LifespanOn, create_lifespan
from shell_support import RecordingHandler, recorded

Message = dict[str, Any]


def run_lifespan(app: Any, mode: str) -> tuple[Any, RecordingHandler]:
    """Runs startup then, unless startup asked to exit, shutdown; returns the lifespan and its log."""

    async def startup_then_shutdown() -> Any:
        lifespan = create_lifespan(app, mode)
        await lifespan.startup()
        if not lifespan.should_exit:
            await lifespan.shutdown()
        return lifespan

    with recorded("dbridge_asgi.error") as log:
        lifespan = asyncio.run(startup_then_shutdown())
    return lifespan, log


def lifespan_app(
    on_startup: Callable[[Message], Message] = lambda scope: {"type": "lifespan.startup.complete"},
    on_shutdown: Callable[[Message], Message] = lambda scope: {"type": "lifespan.shutdown.complete"},
    seen: list[Message] | None = None,
) -> Any:
    """An app that answers each lifespan event with what the callbacks return for its scope."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            if seen is not None:
                seen.append(message)
            if message["type"] == "lifespan.startup":
                await send(on_startup(scope))
            else:
                await send(on_shutdown(scope))
                return

    return app


async def no_lifespan_app(scope: Message, receive: Any, send: Any) -> None:
    # What many plain ASGI apps do with a scope type they do not handle.
    raise RuntimeError(f"unsupported scope type {scope['type']!r}")


def test_startup_and_shutdown_complete() -> None:
    seen: list[Message] = []
    lifespan, log = run_lifespan(lifespan_app(seen=seen), "auto")
    assert [m["type"] for m in seen] == ["lifespan.startup", "lifespan.shutdown"]
    assert not lifespan.should_exit
    assert log.messages() == [
        "Waiting for application startup.",
        "Application startup complete.",
        "Waiting for application shutdown.",
        "Application shutdown complete.",
    ]


def test_scope_declares_asgi_3_and_lifespan_spec_2() -> None:
    scopes: list[Message] = []

    def remember(scope: Message) -> Message:
        scopes.append(scope)
        return {"type": "lifespan.startup.complete"}

    run_lifespan(lifespan_app(on_startup=remember), "on")
    assert scopes[0]["asgi"] == {"version": "3.0", "spec_version": "2.0"}


def test_state_filled_at_startup_is_the_lifespans_state() -> None:
    # The core copies this dict into every request scope, so it must be the very object
    # the app wrote into, not a copy taken before startup ran.
    def fill(scope: Message) -> Message:
        scope["state"]["pool"] = "connections"
        return {"type": "lifespan.startup.complete"}

    lifespan, _ = run_lifespan(lifespan_app(on_startup=fill), "on")
    assert lifespan.state == {"pool": "connections"}


def test_auto_mode_serves_an_app_without_lifespan_support() -> None:
    lifespan, log = run_lifespan(no_lifespan_app, "auto")
    assert not lifespan.should_exit
    assert log.messages(logging.INFO) == [
        "Waiting for application startup.",
        "ASGI 'lifespan' protocol appears unsupported.",
        "Application startup complete.",
    ]
    assert log.messages(logging.ERROR) == []


def test_on_mode_refuses_to_start_an_app_that_raises() -> None:
    lifespan, log = run_lifespan(no_lifespan_app, "on")
    assert lifespan.should_exit
    errors = [r for r in log.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "Exception in 'lifespan' protocol\n",
        "Application startup failed. Exiting.",
    ]
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_failed_message_is_logged_and_startup_fails(mode: str) -> None:
    app = lifespan_app(
        on_startup=lambda scope: {"type": "lifespan.startup.failed", "message": "database down"}
    )
    lifespan, log = run_lifespan(app, mode)
    assert lifespan.should_exit
    assert log.messages(logging.ERROR) == ["database down", "Application startup failed. Exiting."]


def test_startup_failed_without_message_logs_only_the_failure() -> None:
    app = lifespan_app(on_startup=lambda scope: {"type": "lifespan.startup.failed"})
    lifespan, log = run_lifespan(app, "auto")
    assert lifespan.should_exit
    assert log.messages(logging.ERROR) == ["Application startup failed. Exiting."]


def test_shutdown_failed_message_is_logged() -> None:
    app = lifespan_app(
        on_shutdown=lambda scope: {"type": "lifespan.shutdown.failed", "message": "flush lost"}
    )
    lifespan, log = run_lifespan(app, "auto")
    assert lifespan.should_exit
    assert log.messages(logging.ERROR) == ["flush lost", "Application shutdown failed. Exiting."]


def test_app_that_raised_at_startup_is_not_sent_shutdown() -> None:
    calls: list[str] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        calls.append((await receive())["type"])
        raise RuntimeError("no lifespan here")

    async def scenario() -> Any:
        lifespan = create_lifespan(app, "auto")
        await lifespan.startup()
        await lifespan.shutdown()
        return lifespan

    with recorded("dbridge_asgi.error") as log:
        asyncio.run(scenario())
    assert calls == ["lifespan.startup"]
    assert "Waiting for application shutdown." not in log.messages()


def test_invalid_transition_is_an_error_raised_into_the_app() -> None:
    errors: list[BaseException] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send({"type": "lifespan.shutdown.complete"})  # before startup completed
        except AssertionError as exc:
            errors.append(exc)
            raise

    lifespan, _ = run_lifespan(app, "on")
    assert lifespan.should_exit
    assert [str(e) for e in errors] == ["Got invalid state transition on lifespan protocol."]


def test_off_mode_never_calls_the_app() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not be called with --lifespan off")

    lifespan, log = run_lifespan(app, "off")
    assert isinstance(lifespan, LifespanOff)
    assert lifespan.state == {}
    assert not lifespan.should_exit
    assert log.messages() == []


def test_lifespan_task_cancelled_after_startup_is_not_reported_as_unsupported() -> None:
    # A forced exit (second Ctrl+C) skips lifespan shutdown; closing the loop then cancels
    # the app's lifespan task. That is no reason to claim the app lacks lifespan support.
    async def scenario() -> None:
        lifespan = create_lifespan(lifespan_app(), "auto")
        assert isinstance(lifespan, LifespanOn)
        await lifespan.startup()
        task = lifespan._task
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    with recorded("dbridge_asgi.error") as log:
        asyncio.run(scenario())
    assert "ASGI 'lifespan' protocol appears unsupported." not in log.messages()


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError):
        create_lifespan(no_lifespan_app, "sometimes")
