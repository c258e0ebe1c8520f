"""`gunicorn -k dbridge_asgi.workers.DBridgeWorker`: real Gunicorn arbiters, real workers, real clients.

Each test starts its own arbiter (`.venv/bin/gunicorn`) in a new session on 127.0.0.1 and a
free port (or a Unix socket), serving an app from tests/apps. Worker PIDs are the arbiter's
children, read from /proc. Every wait is bounded; at the end the arbiter gets SIGTERM, and
whatever is left of its process group gets SIGKILL, even when the test failed.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from asgi_servers import APPS_DIR, REPO, free_tcp_port, server_environment
from dbridge_asgi.workers import _request_head_limits

DBRIDGE_WORKER = "dbridge_asgi.workers.DBridgeWorker"
UVICORN_WORKER = "uvicorn_worker.UvicornWorker"

BOOT_TIMEOUT = 30.0  # seconds until the wanted workers answer
EXIT_TIMEOUT = 30.0  # seconds an arbiter gets to exit (after SIGTERM, or by itself on a boot failure)
WAIT_STEP = 0.05


def gunicorn_script() -> str:
    path = Path(sys.executable).parent / "gunicorn"
    if not path.is_file():
        pytest.fail(f"{path} is missing: install the test extras (`make install`)", pytrace=False)
    return str(path)


def wait_until(condition, timeout: float, message) -> None:
    """Polls `condition` until true; fails with message() after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message(), pytrace=False)
        time.sleep(WAIT_STEP)


def children_of(pid: int) -> set[int]:
    """The PIDs whose parent is `pid` (Gunicorn's workers, for an arbiter)."""
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # "pid (comm) state ppid ...": comm may contain spaces, so split after ')'.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.add(int(entry))
    return children


@dataclass
class Arbiter:
    process: subprocess.Popen
    stdout_path: Path
    stderr_path: Path
    port: int | None = None
    uds: Path | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def workers(self) -> set[int]:
        return children_of(self.pid)

    def client(self, **options) -> httpx.Client:
        if self.uds is not None:
            client = httpx.Client(
                base_url="http://gunicorn", transport=httpx.HTTPTransport(uds=str(self.uds)), **options
            )
        else:
            client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", **options)
        self.clients.append(client)
        return client

    def get(self, path: str, headers: dict[str, str] | None = None, **options) -> httpx.Response:
        """One request on a new connection (so it may reach any worker)."""
        with self.client(timeout=10.0) as client:
            return client.get(path, headers={"connection": "close", **(headers or {})}, **options)

    def answering_pid(self) -> int:
        response = self.get("/pid")
        assert response.status_code == 200, response.text
        return response.json()["pid"]

    def wait_for_output(self, needle: str, stream: str = "stderr", timeout: float = BOOT_TIMEOUT) -> str:
        read = self.stderr if stream == "stderr" else self.stdout
        wait_until(
            lambda: needle in read(),
            timeout,
            lambda: f"{needle!r} not in gunicorn's {stream} within {timeout} s:\n{read()[-4000:]}",
        )
        return read()

    def wait_for_an_answer(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Until some worker answers an HTTP request (any status)."""

        def answered() -> bool:
            try:
                self.get("/")
            except httpx.TransportError:
                return False
            return True

        wait_until(answered, timeout, lambda: f"no worker answered; stderr:\n{self.stderr()[-4000:]}")

    def wait_for_workers_answering(self, pids: set[int], timeout: float = BOOT_TIMEOUT) -> None:
        """Until each PID in `pids` has answered a request (new connections spread over workers)."""
        seen: set[int] = set()

        def all_answered() -> bool:
            try:
                seen.add(self.answering_pid())
            except httpx.TransportError:
                pass
            return pids <= seen

        wait_until(
            all_answered,
            timeout,
            lambda: (
                f"workers {sorted(pids - seen)} never answered (seen {sorted(seen)}); stderr:\n"
                f"{self.stderr()[-4000:]}"
            ),
        )

    def wait_for_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"gunicorn did not exit within {timeout} s; stderr:\n{self.stderr()[-4000:]}", pytrace=False
            )

    def describe(self) -> str:
        return f"exit code {self.process.returncode}; stderr:\n{self.stderr()[-4000:]}"


def stop_arbiter(arbiter: Arbiter) -> int | None:
    """SIGTERM to the arbiter, a bounded wait, then SIGKILL to its whole process group."""
    for client in arbiter.clients:
        client.close()
    code = None
    if arbiter.process.poll() is None:
        arbiter.process.send_signal(signal.SIGTERM)
        try:
            code = arbiter.process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    else:
        code = arbiter.process.returncode
    # The arbiter leads its own session (start_new_session): its group ID is its PID. Workers
    # it failed to reap are still in that group.
    try:
        os.killpg(arbiter.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if arbiter.process.poll() is None:
        arbiter.process.wait()
    return code


def start_arbiter(
    tmp_path: Path,
    app: str,
    *args: str,
    worker: str = DBRIDGE_WORKER,
    workers: int = 1,
    uds: bool = False,
) -> Arbiter:
    """Starts gunicorn; returns at once (the caller waits for what it needs)."""
    port = None if uds else free_tcp_port()
    socket_path = tmp_path / "gunicorn.sock" if uds else None
    bind = f"unix:{socket_path}" if uds else f"127.0.0.1:{port}"
    command = [
        gunicorn_script(),
        "-k",
        worker,
        "-w",
        str(workers),
        "-b",
        bind,
        "--chdir",
        str(APPS_DIR),
        *args,
        app,
    ]
    stdout_path, stderr_path = tmp_path / "gunicorn.stdout", tmp_path / "gunicorn.stderr"
    # Gunicorn 27's control socket goes to $XDG_RUNTIME_DIR: one per test, not a shared one.
    env = server_environment({"XDG_RUNTIME_DIR": str(tmp_path)})
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )
    return Arbiter(process, stdout_path, stderr_path, port=port, uds=socket_path)


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator:
    """A factory for arbiters that are all stopped (group included) when the test ends."""
    started: list[Arbiter] = []

    def start(app: str, *args: str, wait_for: int | None = None, **options) -> Arbiter:
        arbiter = start_arbiter(tmp_path, app, *args, **options)
        started.append(arbiter)
        expected = options.get("workers", 1) if wait_for is None else wait_for
        if expected:
            wait_until(
                lambda: len(arbiter.workers()) >= expected or arbiter.process.poll() is not None,
                BOOT_TIMEOUT,
                lambda: f"gunicorn did not fork {expected} workers; stderr:\n{arbiter.stderr()[-4000:]}",
            )
            if arbiter.process.poll() is not None:
                pytest.fail(f"gunicorn exited while booting: {arbiter.describe()}", pytrace=False)
            arbiter.wait_for_an_answer()
        return arbiter

    yield start
    for arbiter in started:
        stop_arbiter(arbiter)


# ---- serving ------------------------------------------------------------------------------


@pytest.mark.parametrize("worker", [DBRIDGE_WORKER, UVICORN_WORKER])
def test_two_workers_serve_a_fastapi_app_like_the_uvicorn_worker(gunicorn, worker: str) -> None:
    arbiter = gunicorn("fastapi_app:app", "--preload", worker=worker, workers=2, wait_for=2)

    with arbiter.client(timeout=10.0) as client:
        item = client.get("/items/7", params={"q": "x"})
        state = client.get("/state")
        created = client.post("/items", json={"name": "widget", "price": 2.5})

    assert item.status_code == 200, item.text
    assert item.json()["item_id"] == 7
    assert state.json()["lifespan_marker"] == "set-by-lifespan", "lifespan state reaches requests"
    assert created.status_code == 201, created.text
    assert stop_arbiter(arbiter) == 0, arbiter.describe()


def test_two_workers_serve_a_raw_app(gunicorn) -> None:
    arbiter = gunicorn("raw_app:app", workers=2)

    assert len(arbiter.workers()) == 2
    for _ in range(10):
        response = arbiter.get("/scope")
        assert response.json()["state"] == {"raw_started": True}, "every worker ran the lifespan startup"
    echoed = arbiter.client(timeout=10.0).post("/echo", content=b"x" * 100_000)
    assert echoed.content == b"x" * 100_000


def test_two_workers_on_the_shared_socket_both_get_connections(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", workers=2)

    # With the default transport (io_uring here): one-shot accepts on the shared socket.
    arbiter.wait_for_workers_answering(arbiter.workers())


def test_serves_on_a_unix_socket(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", uds=True)

    assert arbiter.uds is not None and arbiter.uds.is_socket()
    assert arbiter.answering_pid() in arbiter.workers()


def test_serves_with_reuse_port_each_worker_on_its_own_socket(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", "--reuse-port", workers=2)

    arbiter.wait_for_workers_answering(arbiter.workers())


def test_config_kwargs_of_a_subclass_reach_the_server(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", worker="gunicorn_workers.UringAsyncioWorker")

    assert "Using io_uring (forced by --io uring)" in arbiter.wait_for_output("Using io_uring")
    loop = arbiter.get("/loop").json()["loop"]
    assert loop.startswith("asyncio"), f"CONFIG_KWARGS loop='asyncio' ignored: the loop came from {loop}"


# ---- Gunicorn's settings ---------------------------------------------------------------------


def test_access_log_follows_the_access_logformat(gunicorn) -> None:
    log_format = "ACCESS m=%(m)s U=%(U)s q=%(q)s s=%(s)s b=%(b)s ua=%({user-agent}i)s ct=%({content-type}o)s"
    arbiter = gunicorn("gunicorn_app:app", "--access-logfile", "-", "--access-logformat", log_format)

    response = arbiter.get("/pid", params={"a": "1"}, headers={"user-agent": "probe/1.0"})

    line = f"ACCESS m=GET U=/pid q=a=1 s=200 b={len(response.content)} ua=probe/1.0 ct=application/json"
    arbiter.wait_for_output(line, stream="stdout")
    assert arbiter.stdout().count("ACCESS") == 2, "one line for the readiness probe, one for this request"


def test_sigusr1_reopens_the_access_log_file(gunicorn, tmp_path: Path) -> None:
    log_path = tmp_path / "access.log"
    arbiter = gunicorn("gunicorn_app:app", "--access-logfile", str(log_path), "--access-logformat", "%(U)s")
    assert arbiter.get("/pid").status_code == 200
    wait_until(lambda: "/pid" in log_path.read_text(), 10, lambda: "no access line before the rotation")

    rotated = log_path.rename(tmp_path / "access.log.1")
    # The arbiter reopens its files and passes SIGUSR1 on to every worker.
    os.kill(arbiter.pid, signal.SIGUSR1)
    wait_until(log_path.exists, 10, lambda: "the arbiter did not reopen the access log")
    # The worker may see the signal a little after the arbiter: ask until its line lands.
    wait_until(
        lambda: arbiter.get("/headers").status_code == 200 and "/headers" in log_path.read_text(),
        10,
        lambda: f"the worker kept writing to the rotated file: {rotated.read_text()!r}",
    )
    assert arbiter.workers(), "SIGUSR1 must not stop the worker"


def test_request_limits_and_worker_connections_give_414_431_503(gunicorn) -> None:
    arbiter = gunicorn(
        "gunicorn_app:app",
        "--limit-request-line",
        "100",
        "--limit-request-fields",
        "5",
        "--worker-connections",
        "1",
    )

    assert arbiter.get("/pid", params={"x": "a" * 40}).status_code == 200
    assert arbiter.get("/pid", params={"x": "a" * 200}).status_code == 414
    many = {f"x-field-{i}": "v" for i in range(8)}
    assert arbiter.get("/headers", headers=many).status_code == 431

    # --worker-connections 1: while one request is in flight, the next one is refused.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(arbiter.get, "/sleep", params={"seconds": "2"})
        arbiter.wait_for_output("sleep-started", stream="stdout")
        assert arbiter.get("/pid").status_code == 503
        assert slow.result(timeout=20).status_code == 200


# ---- the arbiter's management of workers ----------------------------------------------------


def test_a_killed_worker_is_replaced_and_the_new_one_serves(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", workers=2)
    before = arbiter.workers()
    victim = min(before)

    os.kill(victim, signal.SIGKILL)

    wait_until(
        lambda: len(arbiter.workers() - before) == 1 and victim not in arbiter.workers(),
        BOOT_TIMEOUT,
        lambda: (
            f"no replacement for {victim}: workers {arbiter.workers()}; stderr:\n{arbiter.stderr()[-3000:]}"
        ),
    )
    arbiter.wait_for_workers_answering(arbiter.workers() - before)


def test_max_requests_recycles_workers_without_failing_a_request(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", "--max-requests", "50", "--max-requests-jitter", "10", workers=2)
    failures: list[str] = []
    pids: set[int] = set()

    def one_client(requests: int, keep_alive: bool) -> None:
        headers = {} if keep_alive else {"connection": "close"}
        with arbiter.client(timeout=20.0) as client:
            for _ in range(requests):
                try:
                    response = client.get("/pid", headers=headers)
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    failures.append(f"status {response.status_code}")
                else:
                    pids.add(response.json()["pid"])

    one_client(150, keep_alive=False)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        done = [pool.submit(one_client, 80, keep_alive) for keep_alive in (True, True, False, False)]
        for future in done:
            future.result(timeout=120)

    assert failures == [], f"{len(failures)} failed requests, first: {failures[:5]}"
    # 470 requests at 50 to 60 per worker (a few more may start while one stops) need
    # about 8 workers; 2 would mean nothing was recycled.
    assert len(pids) >= 5, f"workers were not recycled: answered by {sorted(pids)}"
    assert "Maximum request limit" in arbiter.stderr()


def test_responses_from_the_request_limit_on_say_connection_close(gunicorn) -> None:
    # The 4th request is the last: the fixture's readiness probe was the 1st.
    arbiter = gunicorn("gunicorn_app:app", "--max-requests", "4", "--keep-alive", "5")
    (worker,) = arbiter.workers()

    with arbiter.client(timeout=10.0) as client:
        responses = [client.get("/pid") for _ in range(3)]

    assert [r.json()["pid"] for r in responses] == [worker] * 3, "one keep-alive connection, one worker"
    assert [r.headers.get("connection") for r in responses] == [None, None, "close"]
    wait_until(
        lambda: worker not in arbiter.workers(),
        EXIT_TIMEOUT,
        lambda: f"worker {worker} did not exit after its last request",
    )
    assert f"Worker (pid:{worker}) exited" not in arbiter.stderr(), "a recycle exits 0"


def test_hup_replaces_the_workers_and_keeps_serving(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", workers=2)
    before = arbiter.workers()

    os.kill(arbiter.pid, signal.SIGHUP)

    wait_until(
        lambda: len(arbiter.workers()) == 2 and not arbiter.workers() & before,
        BOOT_TIMEOUT,
        lambda: f"workers not replaced after HUP: {before} -> {arbiter.workers()}",
    )
    arbiter.wait_for_workers_answering(arbiter.workers())
    assert arbiter.process.poll() is None


def test_sigterm_finishes_the_request_in_flight_then_exits_0(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app")
    (worker,) = arbiter.workers()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(arbiter.get, "/sleep", params={"seconds": "2"})
        arbiter.wait_for_output("sleep-started", stream="stdout")
        arbiter.process.send_signal(signal.SIGTERM)
        response = slow.result(timeout=30)

    assert response.status_code == 200, response.text
    assert response.json()["pid"] == worker
    assert arbiter.wait_for_exit() == 0, arbiter.describe()
    stderr = arbiter.stderr()
    assert "Application shutdown complete." in stderr
    assert f"Worker (pid:{worker}) was sent" not in stderr, "the worker died by a signal instead of exiting"


def test_sigquit_stops_at_once_without_waiting_for_requests(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", "--graceful-timeout", "60")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(arbiter.get, "/sleep", params={"seconds": "50"})
        arbiter.wait_for_output("sleep-started", stream="stdout")
        arbiter.process.send_signal(signal.SIGQUIT)
        # Bounded well below the 50 s request and the 60 s graceful timeout.
        assert arbiter.wait_for_exit(timeout=20) == 0, arbiter.describe()
        with pytest.raises(httpx.HTTPError):
            slow.result(timeout=20)
    assert "Waiting for application shutdown." not in arbiter.stderr()


def test_sigint_to_a_worker_stops_it_at_once_and_the_arbiter_replaces_it(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", "--graceful-timeout", "60")
    (worker,) = arbiter.workers()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(arbiter.get, "/sleep", params={"seconds": "50"})
        arbiter.wait_for_output("sleep-started", stream="stdout")
        os.kill(worker, signal.SIGINT)
        with pytest.raises(httpx.HTTPError):
            slow.result(timeout=20)

    wait_until(
        lambda: len(arbiter.workers()) == 1 and worker not in arbiter.workers(),
        BOOT_TIMEOUT,
        lambda: f"worker {worker} was not replaced after SIGINT: {arbiter.workers()}",
    )
    assert f"Worker (pid:{worker}) was sent" not in arbiter.stderr(), "the worker died by the signal"
    arbiter.wait_for_workers_answering(arbiter.workers())


def test_workers_stop_by_themselves_when_the_arbiter_is_gone(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", workers=2)
    workers = arbiter.workers()

    os.kill(arbiter.pid, signal.SIGKILL)
    arbiter.process.wait(timeout=EXIT_TIMEOUT)

    def running(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    wait_until(
        lambda: not any(running(pid) for pid in workers),
        EXIT_TIMEOUT,
        lambda: f"orphaned workers still running: {[pid for pid in workers if running(pid)]}",
    )
    assert "Parent changed, shutting down" in arbiter.stderr()


def test_a_wedged_worker_is_killed_after_timeout_and_replaced(gunicorn) -> None:
    arbiter = gunicorn("gunicorn_app:app", "--timeout", "2")
    (worker,) = arbiter.workers()

    # A slow request that awaits keeps the heartbeat going: nobody is killed.
    slow = arbiter.get("/sleep", params={"seconds": "5"})
    assert slow.status_code == 200 and slow.json()["pid"] == worker
    assert "WORKER TIMEOUT" not in arbiter.stderr()

    # One that blocks the loop stops it.
    with pytest.raises(httpx.HTTPError), arbiter.client(timeout=30.0) as client:
        client.get("/block", params={"seconds": "25"})
    assert f"WORKER TIMEOUT (pid:{worker})" in arbiter.stderr()
    wait_until(
        lambda: len(arbiter.workers()) == 1 and worker not in arbiter.workers(),
        BOOT_TIMEOUT,
        lambda: f"the wedged worker {worker} was not replaced: {arbiter.workers()}",
    )
    arbiter.wait_for_workers_answering(arbiter.workers())


# ---- boot failures stop the arbiter ---------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "exit_code", "reason"),
    [
        ("import_fail_app:app", 3, "Worker failed to boot."),
        ("raw_app:no_such_app", 4, "App failed to load."),
    ],
)
def test_an_app_that_does_not_load_stops_the_arbiter(gunicorn, app: str, exit_code: int, reason: str) -> None:
    # One worker: when two fail at once, Gunicorn 27's arbiter raises HaltServer again while
    # halting for the first and exits 1 (its own bug, whatever the worker class).
    arbiter = gunicorn(app, wait_for=0)

    assert arbiter.wait_for_exit() == exit_code, arbiter.describe()
    assert reason in arbiter.stderr()


@pytest.mark.parametrize("worker", [DBRIDGE_WORKER, UVICORN_WORKER])
def test_a_failed_lifespan_startup_stops_the_arbiter(gunicorn, worker: str) -> None:
    arbiter = gunicorn("lifespan_fail_app:reports_failure", worker=worker, wait_for=0)

    assert arbiter.wait_for_exit() == 3, arbiter.describe()
    stderr = arbiter.stderr()
    assert "Application startup failed. Exiting." in stderr
    assert "Worker failed to boot." in stderr


def test_serves_https_from_gunicorns_keyfile_and_certfile(gunicorn, tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    key, cert, ca_file = tmp_path / "key.pem", tmp_path / "cert.pem", tmp_path / "ca.pem"
    server_cert.private_key_pem.write_to_path(str(key))
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    ca.cert_pem.write_to_path(str(ca_file))
    arbiter = gunicorn("raw_app:app", "--keyfile", str(key), "--certfile", str(cert), wait_for=0)
    responses: list[httpx.Response] = []

    def answered() -> bool:
        try:
            responses.append(httpx.get(f"https://127.0.0.1:{arbiter.port}/scope", verify=str(ca_file), timeout=5))
        except httpx.TransportError:
            return False
        return True

    wait_until(answered, BOOT_TIMEOUT, lambda: f"no HTTPS answer; {arbiter.describe()}")
    assert responses[-1].status_code == 200 and responses[-1].json()["scheme"] == "https"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{arbiter.port}/scope", timeout=5)  # never plain HTTP


def test_a_bad_certificate_stops_the_arbiter(gunicorn, tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    key.write_text("not a key\n")
    cert.write_text("not a certificate\n")
    arbiter = gunicorn("gunicorn_app:app", "--keyfile", str(key), "--certfile", str(cert), wait_for=0)

    assert arbiter.wait_for_exit() == 3, arbiter.describe()
    assert "cannot load the certificate chain" in arbiter.stderr()


# ---- Gunicorn's --limit-request-* read as Gunicorn reads them ---------------------------------


@pytest.mark.parametrize(
    ("gunicorn_values", "core_limits"),
    [
        pytest.param((4094, 100, 8190), (4094, 100, 100 * 8192 + 2), id="gunicorn_defaults"),
        pytest.param((0, 100, 8190), (1024 * 1024, 100, 100 * 8192 + 2), id="line_0_is_gunicorns_1_MiB"),
        pytest.param((20000, 100, 8190), (8190, 100, 100 * 8192 + 2), id="line_capped_at_8190"),
        pytest.param((4094, 0, 8190), (4094, 32768, 32768 * 8192 + 2), id="fields_0_is_32768"),
        pytest.param((4094, 50000, 8190), (4094, 32768, 32768 * 8192 + 2), id="fields_capped_at_32768"),
        pytest.param((4094, 10, 0), (4094, 10, 10 * 8192 + 2), id="field_size_0_is_8190"),
        pytest.param((4094, 10, 100), (4094, 10, 10 * 102 + 2), id="field_size_bounds_the_header_section"),
    ],
)
def test_request_head_limits_follow_gunicorns_reading(gunicorn_values, core_limits) -> None:
    line, fields, header_bytes = core_limits
    assert _request_head_limits(*gunicorn_values) == {
        "limit_request_line": line,
        "limit_request_fields": fields,
        "limit_request_field_size": header_bytes,
    }
