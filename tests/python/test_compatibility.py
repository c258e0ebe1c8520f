"""uvicorn's options, each observed from outside on the real CLI: a socket, a log line, an
exit code. Where uvicorn behaves the same the same check runs against uvicorn too (the
`kind` parameter); where we knowingly differ, the test asserts our behaviour and
docs/compatibility.md says why. That page's table names, for every uvicorn option, the
tests that prove it; the last test here keeps the table and the tests in step.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from asgi_servers import (
    APPS_DIR,
    REPO,
    START_TIMEOUT,
    dbridge_script,
    free_tcp_port,
    require_uvicorn,
    serve,
    server_environment,
    start_server,
    stop_process,
)
from raw_http import ResponseReader, build_request

KINDS = ["uvicorn", "dbridge-asgi"]
APP = "compat_app:app"
WAIT = 20.0  # seconds an effect may take to show (a close, a log line, an exit)
COMPATIBILITY_PAGE = REPO / "docs" / "compatibility.md"

serving = contextlib.contextmanager(serve)


def program(kind: str) -> list[str]:
    if kind == "dbridge-asgi":
        return [dbridge_script()]
    require_uvicorn()
    return [sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools"]


@contextlib.contextmanager
def launched(
    kind: str,
    args: list[str],
    log_dir: Path,
    ready: Callable[[str], bool] = lambda stderr: "running on" in stderr,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> Iterator[tuple[subprocess.Popen, Path]]:
    """`kind` started with exactly `args` (no --host/--port added); yields once ready(stderr)."""
    stderr_path = log_dir / f"{kind}.stderr"
    with open(stderr_path, "wb") as err, open(log_dir / f"{kind}.stdout", "wb") as out:
        process = subprocess.Popen(
            [*program(kind), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=REPO,
            env=server_environment(env),
            pass_fds=pass_fds,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready(stderr_path.read_text(errors="replace")):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{kind} did not start: {stderr_path.read_text(errors='replace')}", pytrace=False)
            time.sleep(0.02)
        yield process, stderr_path
    finally:
        stop_process(process)


def facts(url: str) -> dict:
    response = httpx.get(url, timeout=WAIT)
    assert response.status_code == 200, response
    return response.json()


def connects(host: str, port: int) -> Callable[[str], bool]:
    def ready(stderr: str) -> bool:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            return False

    return ready


# ---- where it listens: --host, --port, --fd, environment ------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("host", "connect_to"),
    [("0.0.0.0", "127.0.0.1"), ("::1", "::1"), ("::", "::1")],
    ids=["any4", "v6", "any6"],
)
def test_host_and_port_listen_where_told(kind: str, host: str, connect_to: str, tmp_path: Path) -> None:
    port = free_tcp_port()
    args = [APP, "--app-dir", str(APPS_DIR), "--host", host, "--port", str(port)]
    with launched(kind, args, tmp_path):
        url_host = f"[{connect_to}]" if ":" in connect_to else connect_to
        assert facts(f"http://{url_host}:{port}/")["env"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_fd_serves_an_inherited_listening_socket(kind: str, tmp_path: Path) -> None:
    # Socket activation (systemd, circus): the socket is bound before the server starts.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        fd = listener.fileno()
        args = [APP, "--app-dir", str(APPS_DIR), "--fd", str(fd)]
        with launched(kind, args, tmp_path, pass_fds=(fd,)):
            listener.close()  # the server's copy is the only one left
            assert facts(f"http://127.0.0.1:{port}/")["env"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_options_from_uvicorn_environment_variables(kind: str, tmp_path: Path) -> None:
    # What a container image written for uvicorn sets instead of a command line.
    port = free_tcp_port()
    env = {
        "UVICORN_APP": APP,
        "UVICORN_APP_DIR": str(APPS_DIR),
        "UVICORN_HOST": "127.0.0.1",
        "UVICORN_PORT": str(port),
        "UVICORN_ACCESS_LOG": "false",
        "UVICORN_HEADERS": "x-from-env:yes",
    }
    with launched(kind, [], tmp_path, env=env) as (process, _):
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=WAIT)
        assert response.status_code == 200
        assert response.headers.get("x-from-env") == "yes"
        assert stop_process(process) is not None
    assert '"GET / HTTP/1.1"' not in (tmp_path / f"{kind}.stdout").read_text()


def test_dbridge_environment_variables_win_over_uvicorn_ones(tmp_path: Path) -> None:
    port = free_tcp_port()
    env = {"UVICORN_PORT": "1", "DBRIDGE_ASGI_PORT": str(port)}
    with launched("dbridge-asgi", [APP, "--app-dir", str(APPS_DIR)], tmp_path, env=env):
        assert facts(f"http://127.0.0.1:{port}/")["env"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_backlog_sizes_the_listen_queue(kind: str, tmp_path: Path) -> None:
    # For a listening socket `ss` shows the backlog given to listen() as Send-Q.
    ss = shutil.which("ss")
    if ss is None:
        pytest.fail("ss is not installed (Debian: apt-get install iproute2)", pytrace=False)
    for server in serve(kind, APP, tmp_path, args=["--backlog", "77"]):
        listing = subprocess.run(
            [ss, "-Hltn", f"sport = :{server.port}"], capture_output=True, text=True, check=True, timeout=WAIT
        ).stdout
        send_queues = {line.split()[2] for line in listing.splitlines() if line.strip()}
        assert send_queues == {"77"}, listing


# ---- what runs the app: --loop, --interface, --factory, --app-dir, --env-file, --lifespan ----


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("loop", "module"), [("asyncio", "asyncio."), ("uvloop", "uvloop.")])
def test_loop_runs_the_app_on_the_chosen_event_loop(
    kind: str, loop: str, module: str, tmp_path: Path
) -> None:
    for server in serve(kind, APP, tmp_path, args=["--loop", loop]):
        assert facts(f"{server.url}/")["loop"].startswith(module)


def test_loop_ring_runs_the_app_on_the_io_uring_selector(tmp_path: Path) -> None:
    # Ours only: an asyncio loop whose selector is the io_uring ring.
    for server in serve("dbridge-asgi", APP, tmp_path, args=["--loop", "ring", "--io", "uring"]):
        seen = facts(f"{server.url}/")
        assert (seen["loop"].split(".")[0], seen["selector"]) == ("asyncio", "RingSelector"), seen


@pytest.mark.parametrize("kind", KINDS)
def test_interface_asgi2_calls_the_app_the_asgi2_way(kind: str, tmp_path: Path) -> None:
    for server in serve(kind, "compat_app:Asgi2App", tmp_path, args=["--interface", "asgi2"]):
        assert httpx.get(f"{server.url}/", timeout=WAIT).text == "asgi2"


@pytest.mark.parametrize("kind", KINDS)
def test_factory_serves_what_the_factory_returns(kind: str, tmp_path: Path) -> None:
    for server in serve(kind, "compat_app:make_app", tmp_path, args=["--factory"]):
        assert httpx.get(f"{server.url}/", timeout=WAIT).text == "from-factory"


@pytest.mark.parametrize("kind", KINDS)
def test_app_dir_is_where_the_app_is_imported_from(kind: str, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(APPS_DIR / "compat_app.py", elsewhere / "only_here_app.py")
    for server in serve(kind, "only_here_app:app", tmp_path, args=["--app-dir", str(elsewhere)]):
        assert facts(f"{server.url}/")["env"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_env_file_sets_variables_the_app_sees(kind: str, tmp_path: Path) -> None:
    env_file = tmp_path / "compat.env"
    env_file.write_text("# deployment settings\nCOMPAT_FROM_ENV_FILE=loaded\n")
    for server in serve(kind, APP, tmp_path, args=["--env-file", str(env_file)]):
        assert facts(f"{server.url}/")["env"] == "loaded"


@pytest.mark.parametrize("kind", KINDS)
def test_lifespan_off_serves_an_app_whose_startup_raises(kind: str, tmp_path: Path) -> None:
    # With --lifespan on the same app does not start (test_asgi_raw's exit-3 test).
    for server in serve(kind, "lifespan_fail_app:raises", tmp_path, args=["--lifespan", "off"]):
        assert httpx.get(f"{server.url}/", timeout=WAIT).text == "ok"
    assert "Waiting for application startup" not in server.stderr()


# ---- logging: --log-config, --log-level, --access-log, --use-colors ---------------------------


LOG_FORMAT = "COMPAT %(levelname)s %(name)s %(message)s"


def log_config_file(directory: Path, suffix: str, logger: str, log_file: Path) -> Path:
    """A config that sends `logger` (the server's error logger) to `log_file` in LOG_FORMAT."""
    path = directory / f"logging{suffix}"
    if suffix == ".ini":
        path.write_text(
            "[loggers]\nkeys=root,server\n\n[handlers]\nkeys=file\n\n[formatters]\nkeys=plain\n\n"
            "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
            f"[logger_server]\nlevel=INFO\nhandlers=file\nqualname={logger}\npropagate=0\n\n"
            f"[handler_file]\nclass=FileHandler\nformatter=plain\nargs=({str(log_file)!r},)\n\n"
            f"[formatter_plain]\nformat={LOG_FORMAT}\n"
        )
        return path
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "formatter": "plain", "filename": str(log_file)}
        },
        "loggers": {logger: {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    if suffix == ".json":
        path.write_text(json.dumps(config))
    else:
        import yaml

        path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", [".ini", ".json", ".yaml"])
def test_log_config_file_routes_the_server_log(kind: str, suffix: str, tmp_path: Path) -> None:
    # Knowingly different: our loggers are dbridge_asgi.*, uvicorn's uvicorn.*; a config
    # written for uvicorn needs its logger names changed (docs/compatibility.md).
    logger = {"uvicorn": "uvicorn.error", "dbridge-asgi": "dbridge_asgi.error"}[kind]
    log_file = tmp_path / "server.log"
    config = log_config_file(tmp_path, suffix, logger, log_file)
    port = free_tcp_port()
    args = [APP, "--app-dir", str(APPS_DIR), "--port", str(port), "--log-config", str(config)]
    with launched(kind, args, tmp_path, ready=connects("127.0.0.1", port)) as (_, stderr_path):
        assert facts(f"http://127.0.0.1:{port}/")["env"] is None
        logged = log_file.read_text()
        assert f"COMPAT INFO {logger} " in logged and "running on" in logged, logged
        assert "running on" not in stderr_path.read_text()


@pytest.mark.parametrize("kind", KINDS)
def test_log_level_warning_keeps_info_lines_out(kind: str, tmp_path: Path) -> None:
    port = free_tcp_port()
    args = [APP, "--app-dir", str(APPS_DIR), "--port", str(port), "--log-level", "warning"]
    with launched(kind, args, tmp_path, ready=connects("127.0.0.1", port)) as (process, stderr_path):
        assert facts(f"http://127.0.0.1:{port}/")["env"] is None
        stop_process(process)  # everything it would log is written once it has exited
    log = stderr_path.read_text() + (tmp_path / f"{kind}.stdout").read_text()
    assert "INFO" not in log, log


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("access_log", [True, False])
def test_access_log_line_per_request_or_none(kind: str, access_log: bool, tmp_path: Path) -> None:
    args = [] if access_log else ["--no-access-log"]
    for server in serve(kind, APP, tmp_path, args=args):
        assert httpx.get(f"{server.url}/?mark=compat", timeout=WAIT).status_code == 200
        if access_log:
            server.wait_for_output('"GET /?mark=compat HTTP/1.1" 200', stream="stdout")
    # Stopped: whatever it would log is written.
    assert ('"GET /?mark=compat HTTP/1.1" 200' in server.stdout()) is access_log
    assert "Application startup complete." in server.stderr()


ANSI_ESCAPE = "\x1b["


@pytest.mark.parametrize("kind", KINDS)
def test_use_colors_colours_a_log_that_is_not_a_terminal(kind: str, tmp_path: Path) -> None:
    # By default a log on a pipe is plain (every other test reads it so).
    for server in serve(kind, APP, tmp_path, args=["--use-colors"]):
        assert httpx.get(f"{server.url}/", timeout=WAIT).status_code == 200
        server.wait_for_output("GET / HTTP/1.1", stream="stdout")
    assert ANSI_ESCAPE in server.stderr() and ANSI_ESCAPE in server.stdout()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("flags", "coloured"), [([], True), (["--no-use-colors"], False)])
def test_no_use_colors_keeps_a_terminal_plain(
    kind: str, flags: list[str], coloured: bool, tmp_path: Path
) -> None:
    # A terminal gets colours by default; --no-use-colors turns them off. The log is read
    # through a pseudo-terminal.
    import pty

    primary, secondary = pty.openpty()
    port = free_tcp_port()
    process = subprocess.Popen(
        [*program(kind), APP, "--app-dir", str(APPS_DIR), "--port", str(port), *flags],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        cwd=REPO,
        env=server_environment(),
    )
    os.close(secondary)
    output = b""
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while b"running on" not in output:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"{kind} did not start: {output!r}", pytrace=False)
            output += _read_available(primary)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=WAIT).status_code == 200
        deadline = time.monotonic() + WAIT
        while b"GET / HTTP/1.1" not in output and time.monotonic() < deadline:
            output += _read_available(primary)
    finally:
        stop_process(process)
        os.close(primary)
    text = output.decode(errors="replace")
    assert "GET / HTTP/1.1" in text, text  # the access line, coloured or not
    assert (ANSI_ESCAPE in text) is coloured, text


def _read_available(fd: int) -> bytes:
    import select

    readable, _, _ = select.select([fd], [], [], 0.1)
    if not readable:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other end closed
        return b""


# ---- what goes on the wire: headers, limits, timeouts -------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {"server": True, "date": True, "x-compat": None}),
        (
            ["--no-server-header", "--no-date-header", "--header", "X-Compat: yes"],
            {"server": False, "date": False, "x-compat": "yes"},
        ),
    ],
    ids=["defaults", "flags"],
)
def test_server_date_and_custom_headers(kind: str, args: list[str], expected: dict, tmp_path: Path) -> None:
    for server in serve(kind, APP, tmp_path, args=args):
        headers = httpx.get(f"{server.url}/", timeout=WAIT).headers
        seen = {"server": "server" in headers, "date": "date" in headers, "x-compat": headers.get("x-compat")}
        assert seen == expected, headers


def read_head(sock: socket.socket) -> bytes:
    """The response head of a response whose body goes on (read up to the empty line)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


@pytest.mark.parametrize("kind", KINDS)
def test_limit_concurrency_answers_503_past_the_limit(kind: str, tmp_path: Path) -> None:
    # Knowingly different: we count requests in flight; uvicorn counts open connections
    # too, so with the same limit it refuses one request earlier (docs/compatibility.md).
    limit = 3
    served_before_503 = {"dbridge-asgi": limit, "uvicorn": limit - 1}[kind]
    for server in serve(kind, APP, tmp_path, args=["--limit-concurrency", str(limit)]):
        with contextlib.ExitStack() as holds:
            for _ in range(served_before_503):
                sock = holds.enter_context(server.connect())
                sock.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
                assert read_head(sock).startswith(b"HTTP/1.1 200"), "a request within the limit was refused"
            refused = httpx.get(f"{server.url}/", timeout=WAIT)
            assert refused.status_code == 503, refused
        # The held requests are gone once their clients closed; room again.
        deadline = time.monotonic() + WAIT
        while httpx.get(f"{server.url}/", timeout=WAIT).status_code == 503:
            assert time.monotonic() < deadline, "still 503 after the held requests ended"
            time.sleep(0.05)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("timeout", ["1", "60"])
def test_timeout_keep_alive_closes_an_idle_connection(kind: str, timeout: str, tmp_path: Path) -> None:
    request = build_request("GET", "/", headers=[("Host", "t")])
    for server in serve(kind, APP, tmp_path, args=["--timeout-keep-alive", timeout]):
        with server.connect(timeout=WAIT) as sock:
            reader = ResponseReader(sock)
            sock.sendall(request)
            assert reader.read_response().status == 200
            if timeout == "1":
                assert reader.closed_by_server(), "the idle connection was not closed"
            else:
                # Long after a 1 s timeout would have closed it, the connection still serves.
                time.sleep(2)
                sock.sendall(request)
                assert reader.read_response().status == 200


MAX_REQUESTS_LINE = re.compile(r"Maximum request limit of (\d+) exceeded")


@pytest.mark.parametrize("kind", KINDS)
def test_limit_max_requests_with_jitter_stops_a_single_server(kind: str, tmp_path: Path) -> None:
    limit, jitter = 3, 4
    args = ["--limit-max-requests", str(limit), "--limit-max-requests-jitter", str(jitter)]
    server = start_server(kind, APP, tmp_path, args=args)
    try:
        answered = 0
        while server.alive() and answered < 50:
            try:
                httpx.get(f"{server.url}/", timeout=WAIT).raise_for_status()
            except httpx.TransportError:
                break  # it stopped accepting
            answered += 1
        code = server.process.wait(timeout=WAIT)
    finally:
        stop_process(server.process)
    assert code == 0, server.stderr()[-3000:]
    found = MAX_REQUESTS_LINE.search(server.stderr())
    assert found, server.stderr()[-3000:]
    effective = int(found.group(1))
    assert limit <= effective <= limit + jitter
    assert answered >= effective


# ---- the command itself -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_version_prints_the_server_and_python(kind: str) -> None:
    import platform

    result = subprocess.run(
        [*program(kind), "--version"], capture_output=True, text=True, timeout=WAIT, check=False
    )
    assert result.returncode == 0, result.stderr
    name = {"uvicorn": "uvicorn", "dbridge-asgi": "dbridge-asgi"}[kind]
    assert result.stdout.startswith(f"Running {name} "), result.stdout
    assert f"{platform.python_implementation()} {platform.python_version()}" in result.stdout


def test_reload_exclude_leaves_matching_files_unwatched(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(APPS_DIR / "compat_app.py", source / "watched_app.py")
    logs = tmp_path / "logs"
    logs.mkdir()
    args = ["--reload", "--reload-dir", str(source), "--reload-exclude", "skip_*.py", "--reload-delay", "0.1"]
    for server in serve("dbridge-asgi", "watched_app:app", logs, args=[*args, "--app-dir", str(source)]):
        # The first answer comes from the spawned server, which the reloader starts just
        # before it starts watching: from then on changes are seen.
        assert facts(f"{server.url}/")["env"] is None
        # Both changes land in one batch or two; only the watched one may be reported.
        (source / "skip_me.py").write_text("X = 1\n")
        (source / "watched_app.py").write_text((APPS_DIR / "compat_app.py").read_text() + "\n# changed\n")
        log = server.wait_for_output("detected changes in", timeout=WAIT)
        assert "watched_app.py" in log and "skip_me.py" not in log, log


# ---- the table in docs/compatibility.md ---------------------------------------------------------


TABLE_ROW = re.compile(r"^\|\s*`(--[a-z0-9-]+)`")
STATUSES = ("supported", "different", "pending")


class TableRow(NamedTuple):
    options: list[str]  # an option and, in the same row, its --no- form
    status: str
    tests: list[str]  # "file.py::test_name"


def table_rows() -> list[TableRow]:
    """The rows of the page's option table (those whose first cell names an option)."""
    rows = []
    for line in COMPATIBILITY_PAGE.read_text().splitlines():
        if not TABLE_ROW.match(line):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows.append(
            TableRow(
                options=re.findall(r"`(--[a-z0-9-]+)`", cells[0]),
                status=cells[1].split(":")[0].strip(),
                tests=re.findall(r"`([\w/.]+\.py::\w+)`", cells[2]),
            )
        )
    return rows


def defined_tests(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    }


def test_the_table_names_every_uvicorn_option_and_only_real_tests() -> None:
    uvicorn_main = importlib.import_module("uvicorn.main").main
    options = {opt for p in uvicorn_main.params for opt in p.opts + p.secondary_opts if opt.startswith("--")}
    rows = table_rows()
    row_of = {option: row for row in rows for option in row.options}
    assert sorted(options - row_of.keys()) == [], "uvicorn options missing from docs/compatibility.md"
    assert sorted(row_of.keys() - options) == [], "rows for options uvicorn does not have"
    tests_dir = Path(__file__).parent
    problems = []
    for row in rows:
        if row.status not in STATUSES:
            problems.append(f"{row.options}: status {row.status!r} is not one of {STATUSES}")
        if row.status != "pending" and not row.tests:
            problems.append(f"{row.options}: {row.status} but no test named")
        for test in row.tests:
            file, name = test.split("::")
            module = tests_dir / Path(file).name
            if not module.is_file() or name not in defined_tests(module):
                problems.append(f"{row.options}: {test} does not exist")
    assert problems == [], "\n".join(problems)
    # Every option uvicorn has and we do not (yet) is pending, never silently missing.
    ours = importlib.import_module("dbridge_asgi.main").main
    mine = {opt for p in ours.params for opt in p.opts + p.secondary_opts}
    unknown = sorted(option for option in options - mine if row_of[option].status != "pending")
    assert unknown == [], "options our CLI does not know that the table does not call pending"
    counts = {status: sum(row.status == status for row in rows) for status in STATUSES}
    summary = (
        f"Summary: {len(rows)} rows (a row holds an option and its `--no-` form): "
        f"{counts['supported']} supported, {counts['different']} different, {counts['pending']} pending."
    )
    assert summary in COMPATIBILITY_PAGE.read_text(), f"the summary line should read: {summary}"
