"""uvicorn's whole command line is ours: every option it has is accepted, and the ones
that choose machinery we do not have (--http, --http2) say so once in the log."""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx
import pytest

from asgi_servers import ServerProcess, serve
from raw_http import build_request


def test_every_uvicorn_option_is_accepted() -> None:
    uvicorn_main = importlib.import_module("uvicorn.main").main
    ours = importlib.import_module("dbridge_asgi.main").main
    theirs = {opt for p in uvicorn_main.params for opt in p.opts + p.secondary_opts}
    mine = {opt for p in ours.params for opt in p.opts + p.secondary_opts}
    assert theirs - mine == set()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--http", "httptools"], "--http httptools has no effect"),
        (["--http", "h11"], "--http h11 has no effect"),
        (["--http2"], "HTTP/2 is not supported by dbridge-asgi; serving HTTP/1.1"),
        (["--ws", "wsproto"], "--ws wsproto has no effect"),
        (["--ws", "websockets-sansio"], "--ws websockets-sansio has no effect"),
    ],
)
def test_options_without_effect_are_accepted_and_said_once(
    args: list[str], line: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for server in serve("dbridge-asgi", "raw_app:app", tmp_path_factory.mktemp("noeffect"), args=args):
        assert httpx.get(f"{server.url}/scope", timeout=10).status_code == 200
        assert server.stderr().count(line) == 1, server.stderr()


def test_h11_max_incomplete_event_size_bounds_the_request_head(tmp_path_factory: pytest.TempPathFactory) -> None:
    args = ["--h11-max-incomplete-event-size", "2048"]
    for server in serve("dbridge-asgi", "raw_app:app", tmp_path_factory.mktemp("h11max"), args=args):
        small = [("Host", "h"), ("X-Pad", "a" * 1000)]
        big = [("Host", "h"), ("X-Pad", "a" * 3000)]
        with server.connect() as sock:
            sock.sendall(build_request("GET", "/scope", headers=small))
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
        with server.connect() as sock:
            sock.sendall(build_request("GET", "/scope", headers=big))
            assert sock.recv(64).startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize("kind", ["uvicorn", "dbridge-asgi"])
@pytest.mark.parametrize(("args", "seen"), [([], "set-at-import"), (["--reset-contextvars"], "unset")])
def test_reset_contextvars_as_uvicorn(
    kind: str, args: list[str], seen: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for server in serve(kind, "contextvars_app:app", tmp_path_factory.mktemp("ctx"), args=args):
        assert [httpx.get(f"{server.url}/", timeout=10).text for _ in range(3)] == [seen] * 3


@pytest.mark.parametrize("kind", ["uvicorn", "dbridge-asgi"])
def test_log_level_trace_shows_every_asgi_message_without_content(
    kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for server in serve(kind, "raw_app:app", tmp_path_factory.mktemp("trace"), args=["--log-level", "trace"]):
        assert httpx.post(f"{server.url}/echo", content=b"secret-body", timeout=10).content == b"secret-body"
        # [1] is the lifespan, [2] the request, in both servers.
        log = server.wait_for_output("ASGI [2] Completed")
        for line in (
            "- ASGI [2] Started scope=",
            "- ASGI [2] Receive {'type': 'http.request', 'body': '<11 bytes>', 'more_body': False}",
            "- ASGI [2] Send {'type': 'http.response.start', 'status': 200, 'headers': '<...>'}",
            "- ASGI [2] Send {'type': 'http.response.body', 'body': '<11 bytes>'",
            "- ASGI [2] Completed",
        ):
            assert line in log, f"{kind}: {line!r} not in\n{log[-3000:]}"
        assert "secret-body" not in log
