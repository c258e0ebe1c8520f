"""`--reload`: the real CLI restarts its server process when a watched file changes (watchfiles)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from asgi_servers import ServerProcess, start_server, stop_process

WAIT = 30.0  # seconds a change may take to be seen and the new server to answer

APP_SOURCE = """
VERSION = {version!r}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": VERSION.encode()}})
"""


def write_app(directory: Path, version: str) -> None:
    (directory / "reloadable_app.py").write_text(APP_SOURCE.format(version=version))


def wait_for_answer(server: ServerProcess, expected: str) -> None:
    deadline = time.monotonic() + WAIT
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(server.url, timeout=WAIT).text
        except httpx.HTTPError as exc:  # between the old server's exit and the new one's start
            last = repr(exc)
        if last == expected:
            return
        time.sleep(0.1)
    pytest.fail(
        f"the server never answered {expected!r} (last: {last!r}); stderr:\n{server.stderr()[-4000:]}"
    )


def start_reloading(tmp_path: Path, *args: str) -> tuple[Path, ServerProcess]:
    source = tmp_path / "src"
    source.mkdir()
    write_app(source, "one")
    logs = tmp_path / "logs"
    logs.mkdir()
    server = start_server(
        "dbridge-asgi",
        "reloadable_app:app",
        logs,
        args=[
            "--reload",
            "--reload-dir",
            str(source),
            "--reload-delay",
            "0.1",
            "--app-dir",
            str(source),
            *args,
        ],
    )
    return source, server


def test_a_changed_module_is_served_after_the_reload(tmp_path: Path) -> None:
    source, server = start_reloading(tmp_path)
    try:
        wait_for_answer(server, "one")
        assert "Started reloader process" in server.stderr()
        write_app(source, "two")
        server.wait_for_output("detected changes in", timeout=WAIT)
        wait_for_answer(server, "two")
        assert server.stderr().count("Started server process") == 2
    finally:
        code = stop_process(server.process)
    assert code == 0, server.stderr()[-4000:]
    assert "Stopping reloader process" in server.stderr()


def test_reload_include_adds_a_pattern(tmp_path: Path) -> None:
    source, server = start_reloading(tmp_path, "--reload-include", "*.txt")
    try:
        wait_for_answer(server, "one")
        (source / "notes.txt").write_text("changed")
        text = server.wait_for_output("detected changes in", timeout=WAIT)
        assert "notes.txt" in text
    finally:
        assert stop_process(server.process) == 0, server.stderr()[-4000:]


# ---- which changes count: uvicorn's FileFilter rules, compared with uvicorn's own ------------


FILTER_OPTIONS = [
    {},
    {"reload_includes": ["*.txt"]},
    {"reload_excludes": ["*.py"]},
    {"reload_includes": ["*.txt"], "reload_excludes": ["skip_*.py"]},
    {"reload_includes": [".*"]},
]
FILTER_PATHS = [
    "app.py",
    "pkg/mod.py",
    ".hidden.py",
    "mod.pyc",
    "notes.txt",
    "skip_me.py",
    ".env",
    "~lock.py",
]


@pytest.mark.parametrize("options", FILTER_OPTIONS, ids=lambda options: repr(options) or "defaults")
def test_file_filter_decides_as_uvicorn(
    options: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn.config
    from dbridge_asgi.config import Config
    from dbridge_asgi.reload import FileFilter
    from uvicorn.supervisors.watchfilesreload import FileFilter as UvicornFileFilter

    monkeypatch.chdir(tmp_path)
    ours = FileFilter(Config("m:app", log_config=None, reload=True, **options))
    theirs = UvicornFileFilter(uvicorn.config.Config("m:app", log_config=None, reload=True, **options))
    paths = [tmp_path / relative for relative in FILTER_PATHS]
    assert {p.name: ours(p) for p in paths} == {p.name: theirs(p) for p in paths}


def test_excluded_directory_is_not_watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dbridge_asgi.config import Config

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "generated").mkdir()
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path)
    config = Config(
        "m:app",
        log_config=None,
        reload=True,
        reload_dirs=["src/generated", "docs"],
        reload_excludes=["docs"],
    )
    assert config.reload_dirs == [(tmp_path / "src" / "generated").resolve()]
