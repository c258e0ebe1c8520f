"""Config: loading the app (factories, ASGI 2/3 detection), headers, logging, listening sockets."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbridge_asgi.asgi2 import ASGI2Adapter
from dbridge_asgi.config import STARTUP_FAILURE, Config
from dbridge_asgi.logging import LOGGING_CONFIG, TRACE_LOG_LEVEL
from shell_support import preserved_process_state, recorded, write_module

APPS = """
import functools

async def asgi3_function(scope, receive, send):
    await send({"type": "seen", "scope": scope})

class ASGI3Instance:
    async def __call__(self, scope, receive, send):
        await send({"type": "seen", "scope": scope})

asgi3_instance = ASGI3Instance()

class ASGI2Class:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await send({"type": "seen", "scope": self.scope})

def asgi2_function(scope):
    async def instance(receive, send):
        await send({"type": "seen", "scope": scope})
    return instance

asgi3_partial = functools.partial(asgi3_function)

def create_app():
    return asgi3_function
"""


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[Path]:
    """`cfgapps.py` importable through app_dir; our loggers and sys.path restored afterwards."""
    write_module(tmp_path, "cfgapps", APPS)
    with preserved_process_state(tmp_path):
        yield tmp_path


def loaded(apps: Path, app: str, **options: Any) -> Config:
    config = Config(app, app_dir=str(apps), log_config=None, **options)
    config.load()
    return config


def call(app: Any, scope: dict) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


# ---- interface detection ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["asgi3_function", "asgi3_instance", "asgi3_partial"])
def test_detects_asgi3_and_passes_it_through(apps: Path, name: str) -> None:
    config = loaded(apps, f"cfgapps:{name}")
    assert config.interface == "asgi3"
    assert config.asgi_version == "3.0"
    assert config.loaded_app is getattr(sys.modules["cfgapps"], name)


@pytest.mark.parametrize("name", ["ASGI2Class", "asgi2_function"])
def test_detects_asgi2_and_adapts_it_to_asgi3(apps: Path, name: str) -> None:
    config = loaded(apps, f"cfgapps:{name}")
    assert config.interface == "asgi2"
    assert config.asgi_version == "2.0"
    assert isinstance(config.loaded_app, ASGI2Adapter)
    sent = call(config.loaded_app, {"type": "http", "path": "/"})
    assert sent == [{"type": "seen", "scope": {"type": "http", "path": "/"}}]


def test_explicit_interface_overrides_detection(apps: Path) -> None:
    config = loaded(apps, "cfgapps:ASGI2Class", interface="asgi2")
    assert isinstance(config.loaded_app, ASGI2Adapter)


def test_wsgi_interface_is_refused_with_exit_3(apps: Path) -> None:
    with recorded("dbridge_asgi.error") as log, pytest.raises(SystemExit) as info:
        loaded(apps, "cfgapps:asgi3_function", interface="wsgi")
    assert info.value.code == STARTUP_FAILURE
    assert any("WSGI applications are not supported" in m for m in log.messages(logging.ERROR))


def test_accepts_an_app_object_as_well_as_an_import_string(apps: Path) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    config = Config(app, log_config=None)
    config.load()
    assert config.loaded_app is app


# ---- factories ------------------------------------------------------------------------------


def test_factory_flag_calls_the_factory(apps: Path) -> None:
    with recorded("dbridge_asgi.error") as log:
        config = loaded(apps, "cfgapps:create_app", factory=True)
    assert config.loaded_app is sys.modules["cfgapps"].asgi3_function
    assert log.messages(logging.WARNING) == []


def test_factory_without_flag_is_used_with_uvicorns_warning(apps: Path) -> None:
    with recorded("dbridge_asgi.error") as log:
        config = loaded(apps, "cfgapps:create_app")
    assert config.loaded_app is sys.modules["cfgapps"].asgi3_function
    assert log.messages(logging.WARNING) == [
        "ASGI app factory detected. Using it, but please consider setting the --factory flag explicitly."
    ]


def test_factory_flag_on_something_that_is_not_a_factory_exits_3(apps: Path) -> None:
    with recorded("dbridge_asgi.error") as log, pytest.raises(SystemExit) as info:
        loaded(apps, "cfgapps:asgi3_function", factory=True)
    assert info.value.code == STARTUP_FAILURE
    assert log.messages(logging.ERROR)[0].startswith("Error loading ASGI app factory: ")


def test_unimportable_app_exits_3_with_uvicorns_message(apps: Path) -> None:
    with recorded("dbridge_asgi.error") as log, pytest.raises(SystemExit) as info:
        loaded(apps, "cfgapps:nothing_here")
    assert info.value.code == STARTUP_FAILURE
    assert log.messages(logging.ERROR) == [
        'Error loading ASGI app. Attribute "nothing_here" not found in module "cfgapps".'
    ]


# ---- options --------------------------------------------------------------------------------


def test_headers_are_encoded_with_lowercase_names(apps: Path) -> None:
    config = loaded(apps, "cfgapps:asgi3_function", headers=[("X-Frame-Options", "DENY")])
    assert config.encoded_headers == [(b"x-frame-options", b"DENY")]
    assert config.sends_server_header


def test_own_server_header_replaces_the_default_one(apps: Path) -> None:
    # uvicorn adds "server: uvicorn" only when --header did not name a Server header.
    config = loaded(apps, "cfgapps:asgi3_function", headers=[("Server", "edge")])
    assert not config.sends_server_header


def test_no_server_header_turns_it_off(apps: Path) -> None:
    assert not loaded(apps, "cfgapps:asgi3_function", server_header=False).sends_server_header


def test_workers_default_from_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    config = Config("cfgapps:asgi3_function", log_config=None)
    assert config.workers == 3 and config.workers_from_environment
    assert Config("cfgapps:asgi3_function", log_config=None, workers=1).workers == 1


def test_forwarded_allow_ips_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert Config("m:a", log_config=None).forwarded_allow_ips == "127.0.0.1,::1"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1")
    assert Config("m:a", log_config=None).forwarded_allow_ips == "10.0.0.1"


@pytest.mark.parametrize(
    "option, value", [("lifespan", "sometimes"), ("loop", "trio"), ("io", "kqueue"), ("interface", "asgi4")]
)
def test_invalid_choice_is_rejected(option: str, value: str) -> None:
    with pytest.raises(ValueError, match=option):
        Config("m:a", log_config=None, **{option: value})


def test_loop_factory_asyncio() -> None:
    factory = Config("m:a", log_config=None, loop="asyncio").get_loop_factory()
    loop = factory()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()


def test_loop_factory_auto_prefers_uvloop_when_installed() -> None:
    uvloop = pytest.importorskip("uvloop")
    assert Config("m:a", log_config=None).get_loop_factory() is uvloop.new_event_loop


# ---- logging --------------------------------------------------------------------------------


def test_trace_log_level_is_5(apps: Path) -> None:
    Config("m:a", log_level="trace")
    assert logging.getLogger("dbridge_asgi.error").level == TRACE_LOG_LEVEL == 5
    assert logging.getLevelName(5) == "TRACE"


def test_default_logging_routes_server_and_access_lines(apps: Path) -> None:
    Config("m:a")
    assert logging.getLogger("dbridge_asgi").handlers, "the parent logger owns the server's handler"
    assert logging.getLogger("dbridge_asgi.access").handlers
    assert not logging.getLogger("dbridge_asgi.access").propagate


def test_no_access_log_removes_the_access_handlers(apps: Path) -> None:
    Config("m:a", access_log=False)
    access = logging.getLogger("dbridge_asgi.access")
    assert access.handlers == [] and not access.propagate and not access.hasHandlers()


def test_use_colors_does_not_change_the_module_default(apps: Path) -> None:
    Config("m:a", use_colors=False)
    assert LOGGING_CONFIG["formatters"]["default"]["use_colors"] is None


def test_access_formatter_renders_uvicorns_line() -> None:
    from dbridge_asgi.logging import ACCESS_LOG_FORMAT, AccessFormatter

    formatter = AccessFormatter(
        '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False
    )
    record = logging.LogRecord(
        "dbridge_asgi.access", logging.INFO, __file__, 1, ACCESS_LOG_FORMAT,
        ("127.0.0.1:51000", "GET", "/items/3?q=blue", "1.1", 200), None,
    )  # fmt: skip
    assert formatter.format(record) == 'INFO:     127.0.0.1:51000 - "GET /items/3?q=blue HTTP/1.1" 200 OK'
    assert record.getMessage() == '127.0.0.1:51000 - "GET /items/3?q=blue HTTP/1.1" 200'


def test_default_formatter_pads_the_level() -> None:
    from dbridge_asgi.logging import DefaultFormatter

    formatter = DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False)
    record = logging.LogRecord("dbridge_asgi.error", logging.WARNING, __file__, 1, "careful", None, None)
    assert formatter.format(record) == "WARNING:  careful"


# ---- listening sockets ---------------------------------------------------------------------


def test_binds_tcp_listener_nonblocking_with_reuseaddr() -> None:
    sock = Config("m:a", log_config=None, port=0).bind_socket()
    try:
        assert sock.family == socket.AF_INET
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
        assert sock.getblocking() is False
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN), "the socket must be listening"
        socket.create_connection(sock.getsockname(), timeout=5).close()
    finally:
        sock.close()


def test_host_with_colon_binds_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        sock = Config("m:a", log_config=None, host="::1", port=0).bind_socket()
    except OSError as exc:
        pytest.skip(f"IPv6 loopback unavailable here: {exc}")
    try:
        assert sock.family == socket.AF_INET6
    finally:
        sock.close()


def test_port_in_use_raises_oserror() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            Config("m:a", log_config=None, port=taken.getsockname()[1]).bind_socket()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # sun_path holds 108 bytes; pytest's tmp paths can be longer.
    path = Path(tempfile.mkdtemp(prefix="dbc-"))
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


def test_binds_unix_socket_world_writable(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    sock = Config("m:a", log_config=None, uds=str(path)).bind_socket()
    try:
        assert sock.family == socket.AF_UNIX
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
    finally:
        sock.close()


def test_replaces_stale_unix_socket_and_keeps_its_mode(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    os.chmod(path, 0o660)
    sock = Config("m:a", log_config=None, uds=str(path)).bind_socket()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    finally:
        sock.close()


def test_refuses_to_replace_a_regular_file_with_a_unix_socket(short_dir: Path) -> None:
    path = short_dir / "notes.txt"
    path.write_text("keep me")
    with pytest.raises(OSError):
        Config("m:a", log_config=None, uds=str(path)).bind_socket()
    assert path.read_text() == "keep me"


def test_inherited_fd_keeps_its_family_and_stays_open_for_its_owner() -> None:
    with socket.socket() as inherited:
        inherited.bind(("127.0.0.1", 0))
        sock = Config("m:a", log_config=None, fd=inherited.fileno()).bind_socket()
        try:
            assert sock.family == socket.AF_INET
            assert sock.fileno() != inherited.fileno()
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        finally:
            sock.close()
        assert inherited.getsockname()[1] > 0, "the caller's descriptor must still be open"
