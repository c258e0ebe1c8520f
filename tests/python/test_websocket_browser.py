"""WebSocket interop with a real browser: headless Chromium (Debian `chromium`, installed
by `make test`'s set-up) loads a page from tests/apps/browser_app.py whose script opens
WebSockets to the same server, round-trips text and binary messages (non-ASCII, empty,
large, compressible and not), stays open across keepalive pings, closes with a code and
reason, and sees the server close with one; it POSTs what it saw, which the test reads.

Against dbridge-asgi with each backend, with permessage-deflate (Chromium offers it) and
without (--ws-per-message-deflate false), and against uvicorn, which shows the page itself
expects what a reference server does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgi_servers import ServerProcess, serve

APP = "browser_app:app"
REPORT_TIMEOUT = 90.0  # seconds for Chromium to start, run the page and report
STOP_TIMEOUT = 10.0
# Keepalive pings every 0.1 s, each pong due within 1.5 s, while the page idles for 3 s
# (browser_app.IDLE_MS): a server that does not take Chromium's pongs closes the socket
# (1011) before the page's last echo. 1.5 s is room for Chromium under load; it answers
# pings itself, at once.
KEEPALIVE = ["--ws-ping-interval", "0.1", "--ws-ping-timeout", "1.5"]

SERVERS = {
    "uring-deflate": ("dbridge-asgi", "uring", []),
    "epoll-deflate": ("dbridge-asgi", "epoll", []),
    "uring-no-deflate": ("dbridge-asgi", "uring", ["--ws-per-message-deflate", "false"]),
    "epoll-no-deflate": ("dbridge-asgi", "epoll", ["--ws-per-message-deflate", "false"]),
    "uvicorn": ("uvicorn", None, []),
}


def chromium_binary() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed (Debian: apt-get install chromium, or `make apt-deps`)",
                    pytrace=False)
    return path


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, bool]]:
    kind, io, args = SERVERS[request.param]
    deflate = "--ws-per-message-deflate" not in args
    for process in serve(kind, APP, tmp_path, io=io, args=[*KEEPALIVE, *args]):
        yield process, deflate


def stop_browser(browser: subprocess.Popen) -> None:
    """Chromium runs in its own process group (started with a new session): all of it goes."""
    if browser.poll() is None:
        try:
            os.killpg(browser.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            browser.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(browser.pid, signal.SIGKILL)  # helpers still alive after the main process left
    except ProcessLookupError:
        pass
    browser.wait(timeout=STOP_TIMEOUT)


def fetch_report(server: ServerProcess) -> dict:
    with urllib.request.urlopen(f"{server.url}/report", timeout=10) as response:
        return json.loads(response.read())


def run_page(server: ServerProcess, tmp_path: Path) -> dict:
    """Loads the page in headless Chromium; the report once the page and the app both have it."""
    log = tmp_path / "chromium.log"
    with open(log, "wb") as out:
        browser = subprocess.Popen(
            [
                chromium_binary(),
                "--headless=new",
                "--no-sandbox",  # root cannot use Chromium's sandbox
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--no-proxy-server",
                f"--user-data-dir={tmp_path / 'profile'}",
                f"{server.url}/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Under `make test-asan` the sanitizer runtime is preloaded for our server; the
            # browser is a client and is not built for it.
            env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},
        )
    try:
        deadline = time.monotonic() + REPORT_TIMEOUT
        report = fetch_report(server)
        # The app notes each WebSocket's disconnect after the page saw its close: wait for
        # both, unless the page failed (then the app may never see its second WebSocket).
        while report["page"] is None or (len(report["app"]) < 2 and "error" not in report["page"]):
            if browser.poll() is not None:
                output = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"chromium exited ({browser.returncode}) before reporting:\n{output}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no complete report within {REPORT_TIMEOUT} s: {report}\n"
                    f"chromium:\n{log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.1)
            report = fetch_report(server)
        return report
    finally:
        stop_browser(browser)


def test_chromium_round_trips_messages_and_closes(server: tuple[ServerProcess, bool], tmp_path: Path) -> None:
    process, deflate = server
    report = run_page(process, tmp_path)
    page = report["page"]
    assert "error" not in page, page
    # RFC 6455 §4.2.2 / §9.1: the subprotocol the app chose, and deflate only when enabled.
    assert page["protocol"] == "v1.dbridge"
    if deflate:
        assert page["extensions"].startswith("permessage-deflate"), page["extensions"]
    else:
        assert page["extensions"] == ""
    echoes = [
        "ascii_text",
        "empty_text",
        "non_ascii_text",
        "large_text",
        "small_binary",
        "large_random_binary",
        "large_repetitive_binary",
        "text_after_idle",
    ]
    assert {name: page[name] for name in echoes} == {name: "echoed" for name in echoes}
    # The browser's close: the server answers with the same code (§5.5.1), cleanly.
    assert page["client_close"]["code"] == 4000
    assert page["client_close"]["wasClean"] is True
    # The app's close: the browser sees its code and reason after the last message.
    assert page["server_close_message"] == "bye"
    assert page["server_close"] == {"code": 4001, "reason": "server closing \u2713", "wasClean": True}

    seen = {entry["path"]: entry for entry in report["app"]}
    assert seen["/echo"]["subprotocols"] == ["v2.dbridge", "v1.dbridge"]
    assert seen["/echo"]["disconnect"]["code"] == 4000
    assert seen["/echo"]["disconnect"]["reason"] == "done \u2713"
    # uvicorn's rule, which we follow: after its own close, the app's receive() reports that close.
    assert seen["/server-close"]["disconnect"]["code"] == 4001
