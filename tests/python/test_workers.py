"""`--workers N`: the real CLI with a supervising parent and forked server processes.

The app (tests/apps/workers_app.py) answers its PID, so a test sees which process served.
Children are found by their "Started server process [PID]" lines; every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from asgi_servers import ServerProcess, run_to_exit, start_server, stop_process

APP = "workers_app:app"
SLOW_STARTED = "workers-app: slow request started"  # workers_app.SLOW_STARTED
WAIT = 20.0  # seconds a child may take to start, die or be replaced
T = TypeVar("T")
STARTED = re.compile(r"Started server process \[(\d+)\]")


@pytest.fixture
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    args = getattr(request, "param", ["--workers", "2"])
    server = start_server("dbridge-asgi", APP, tmp_path, args=args)
    try:
        wait_for_children(server, 2)
        yield server
    finally:
        code = stop_process(server.process)
        assert code == 0, f"the parent exited with {code} on SIGTERM; stderr:\n{server.stderr()[-4000:]}"


def started_pids(server: ServerProcess) -> list[int]:
    return [int(pid) for pid in STARTED.findall(server.stderr())]


def wait_for(condition: Callable[[], T], what: str, server: ServerProcess) -> T:
    deadline = time.monotonic() + WAIT
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} did not happen within {WAIT} s; stderr:\n{server.stderr()[-4000:]}", pytrace=False
            )
        time.sleep(0.05)


def wait_for_children(server: ServerProcess, count: int) -> list[int]:
    return wait_for(
        lambda: len(started_pids(server)) >= count and started_pids(server), f"{count} children", server
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but is not reaped yet is a zombie: not serving.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


def live_children(server: ServerProcess) -> set[int]:
    return {pid for pid in started_pids(server) if alive(pid)}


def served_by(server: ServerProcess) -> int:
    """The PID that answered a request on a new connection."""
    response = httpx.get(f"{server.url}/pid", timeout=WAIT)
    assert response.status_code == 200, response
    return int(response.text)


@pytest.mark.parametrize(
    "workers", [["--workers", "2", "--io", "epoll"], ["--workers", "2", "--io", "uring"]], indirect=True
)
def test_two_workers_both_serve(workers: ServerProcess) -> None:
    # Both backends spread connections over the children of one shared socket: epoll by
    # whoever is idle, io_uring by one-shot accepts (a multishot accept would take them all).
    children = set(started_pids(workers))
    assert len(children) == 2 and workers.process.pid not in children

    def both_seen() -> bool:
        # Concurrent requests, so that one child being busy sends the next to the other.
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(served_by(workers))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seen.update(results)
        return seen == children

    seen: set[int] = set()
    wait_for(both_seen, f"requests served by both children {children} (seen {seen})", workers)


def test_killed_child_is_replaced(workers: ServerProcess) -> None:
    victim = started_pids(workers)[0]
    os.kill(victim, signal.SIGKILL)
    workers.wait_for_output(f"Child process [{victim}] died", timeout=WAIT)
    wait_for_children(workers, 3)
    wait_for(lambda: len(live_children(workers)) == 2, "two live children", workers)
    assert served_by(workers) in live_children(workers) - {victim}


@pytest.mark.parametrize(
    "workers", [["--workers", "2", "--io", "epoll"], ["--workers", "2", "--io", "uring"]], indirect=True
)
def test_the_port_keeps_answering_while_a_worker_is_killed_under_load(workers: ServerProcess) -> None:
    # Clients keep asking, each request on a new connection, while one child is killed
    # with SIGKILL. The children share the parent's listening socket, so connections
    # waiting in its queue go to the survivor: once the victim is gone, no request fails.
    # A request the victim had already accepted dies with it (no server can answer that
    # one), so requests started before the victim was gone may fail, at most one per client.
    victim = started_pids(workers)[0]
    clients = 4
    stop = threading.Event()
    outcomes: list[tuple[float, int | None]] = []  # (start time, PID that answered or None)

    def keep_asking() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = httpx.get(f"{workers.url}/pid", timeout=WAIT)
                outcomes.append((started, int(response.text) if response.status_code == 200 else None))
            except httpx.HTTPError:
                outcomes.append((started, None))

    threads = [threading.Thread(target=keep_asking) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(outcomes) >= 20, "20 requests under load", workers)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not alive(victim), f"the victim {victim} gone", workers)
        gone = time.monotonic()
        wait_for_children(workers, 3)
        first_two = set(started_pids(workers)[:2])
        replacement = wait_for(lambda: live_children(workers) - first_two, "a replacement child", workers)
        wait_for(
            lambda: any(start > gone and pid in replacement for start, pid in list(outcomes)),
            "the replacement answering under load",
            workers,
        )
        wait_for(
            lambda: sum(start > gone for start, _ in list(outcomes)) >= 40,
            "40 requests after the kill",
            workers,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=WAIT)
    before = [pid for start, pid in outcomes if start <= gone]
    after = [pid for start, pid in outcomes if start > gone]
    assert after and None not in after, f"{after.count(None)} of {len(after)} requests after the kill failed"
    assert before.count(None) <= clients, f"{before.count(None)} requests in flight at the kill failed"


def test_sighup_replaces_every_child(workers: ServerProcess) -> None:
    before = set(started_pids(workers))
    workers.process.send_signal(signal.SIGHUP)
    wait_for(lambda: not (live_children(workers) & before), "the old children exiting", workers)
    after = live_children(workers)
    assert len(after) == 2 and not (after & before)
    assert served_by(workers) in after


def test_ttin_adds_and_ttou_removes_a_child(workers: ServerProcess) -> None:
    workers.process.send_signal(signal.SIGTTIN)
    wait_for(lambda: len(live_children(workers)) == 3, "a third child", workers)
    workers.process.send_signal(signal.SIGTTOU)
    wait_for(lambda: len(live_children(workers)) == 2, "back to two children", workers)
    assert "Received SIGTTOU, decreasing number of processes." in workers.stderr()
    assert served_by(workers) in live_children(workers)


def test_sigterm_completes_the_in_flight_request_and_exits_0(tmp_path: Path) -> None:
    server = start_server("dbridge-asgi", APP, tmp_path, args=["--workers", "2"])
    try:
        wait_for_children(server, 2)
        outcome: dict[str, object] = {}

        def slow_request() -> None:
            try:
                outcome["response"] = httpx.get(f"{server.url}/slow", timeout=WAIT)
            except httpx.HTTPError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=slow_request)
        thread.start()
        server.wait_for_output(SLOW_STARTED)
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=WAIT)
        thread.join(timeout=WAIT)
    finally:
        stop_process(server.process)
    assert code == 0, server.stderr()[-4000:]
    assert "error" not in outcome, outcome
    response = outcome["response"]
    assert isinstance(response, httpx.Response) and response.status_code == 200
    assert "Stopping parent process" in server.stderr()


def test_unimportable_app_exits_3_without_a_restart_loop() -> None:
    result = run_to_exit("dbridge-asgi", "no_such_module_for_workers:app", args=["--workers", "2"])
    assert result.returncode == 3, result.stderr[-4000:]
    assert "failed to start, stopping the parent process" in result.stderr
    # Each of the two children started once; none was restarted.
    assert len(STARTED.findall(result.stderr)) <= 2, result.stderr[-4000:]


@pytest.mark.parametrize("workers", [["--workers", "2", "--limit-max-requests", "20"]], indirect=True)
def test_limit_max_requests_restarts_children_without_failing_a_request(workers: ServerProcess) -> None:
    pids = [served_by(workers) for _ in range(100)]  # any failure raises or fails in served_by
    assert len(set(pids)) > 2, f"no child was replaced: {sorted(set(pids))}"
    assert "Maximum request limit of 20 exceeded. Terminating process." in workers.stderr()
    assert "died" in workers.stderr()


def test_web_concurrency_sets_the_number_of_workers(tmp_path: Path) -> None:
    server = start_server("dbridge-asgi", APP, tmp_path, env={"WEB_CONCURRENCY": "3"})
    try:
        wait_for_children(server, 3)
        assert served_by(server) in live_children(server)
    finally:
        assert stop_process(server.process) == 0, server.stderr()[-4000:]
    assert len(set(started_pids(server))) == 3


def test_workers_need_an_import_string(tmp_path: Path) -> None:
    script = "import dbridge_asgi\nasync def app(s, r, x): pass\ndbridge_asgi.run(app, workers=2, port=0)\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 3
    assert "You must pass the application as an import string to enable 'workers'." in result.stderr


@pytest.mark.parametrize("workers", [["--workers", "2", "--timeout-worker-healthcheck", "1"]], indirect=True)
def test_child_that_does_not_answer_the_health_check_is_replaced(workers: ServerProcess) -> None:
    stuck = started_pids(workers)[0]
    os.kill(stuck, signal.SIGSTOP)  # alive, but answers nothing
    try:
        workers.wait_for_output(f"Child process [{stuck}] did not answer the health check", timeout=WAIT)
        workers.wait_for_output(f"Child process [{stuck}] died", timeout=WAIT)
    finally:
        if alive(stuck):
            os.kill(stuck, signal.SIGCONT)
    wait_for(lambda: len(live_children(workers)) == 2, "two live children", workers)
    assert stuck not in live_children(workers)
    assert served_by(workers) in live_children(workers)


def test_sighup_with_code_that_no_longer_imports_keeps_the_old_children(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    module = source / "deployed_app.py"
    module.write_text((Path(__file__).parents[1] / "apps" / "workers_app.py").read_text())
    server = start_server(
        "dbridge-asgi", "deployed_app:app", tmp_path, args=["--workers", "2", "--app-dir", str(source)]
    )
    try:
        old = set(wait_for_children(server, 2))
        module.write_text("raise RuntimeError('a bad deploy')\n")
        server.process.send_signal(signal.SIGHUP)
        server.wait_for_output("was not ready in time; keeping worker", timeout=WAIT)
        assert live_children(server) == old
        assert served_by(server) in old
    finally:
        code = stop_process(server.process)
    assert code == 0, server.stderr()[-4000:]
