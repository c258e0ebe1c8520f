"""The Gunicorn worker: `gunicorn -k dbridge_asgi.workers.DBridgeWorker main:app`.

A drop-in for uvicorn's worker (`-k uvicorn_worker.UvicornWorker`). Gunicorn's arbiter
binds the sockets, forks, watches and replaces the workers; each worker is one dbridge-asgi
`Server` serving on the arbiter's sockets, with Gunicorn's settings mapped onto our
`Config` (docs/gunicorn.md has the table) and Gunicorn's loggers doing the logging.

What the arbiter expects of a worker, and how this one keeps it:

* a heartbeat (`notify()`) at least every --timeout seconds, or it is killed: a task on
  the worker's event loop, so a loop blocked by the app stops the heartbeat while a slow
  `await` does not;
* SIGTERM: stop gracefully; SIGINT/SIGQUIT: stop now; SIGUSR1: reopen the log files;
  SIGABRT (sent after a missed heartbeat): exit at once;
* exit status 3 (WORKER_BOOT_ERROR) or 4 (APP_LOAD_ERROR) when it cannot start, so the
  arbiter stops instead of forking new workers that fail the same way.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any, ClassVar

from gunicorn import glogging
from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

from dbridge_asgi.config import Config
from dbridge_asgi.logging import ERROR_LOGGER
from dbridge_asgi.server import DRAIN_POLL_INTERVAL, Server

# The longest gap between two heartbeats. Gunicorn gives the worker half of --timeout;
# beating at least once a second also notices soon when the arbiter is gone.
HEARTBEAT_INTERVAL_MAX = 1.0

# When a worker recycles, how long past the keep-alive timeout its idle connections get
# to be closed by the core's own keep-alive timer.
RECYCLE_DRAIN_MARGIN = 1.0

# What Gunicorn's own request parser allows for --limit-request-line 0 ("unlimited") and
# its caps (gunicorn/http/message.py).
GUNICORN_UNLIMITED_REQUEST_LINE = 1024 * 1024
GUNICORN_MAX_REQUEST_LINE = 8190
GUNICORN_MAX_HEADERS = 32768
GUNICORN_DEFAULT_HEADER_FIELD_SIZE = 8190


class DBridgeWorker(Worker):
    """Serves an ASGI app on the arbiter's sockets with the dbridge-asgi core.

    `CONFIG_KWARGS` (as in uvicorn's worker) is merged last into the `Config` keywords, so
    a subclass sets our own options: `CONFIG_KWARGS = {"io": "epoll", "loop": "asyncio"}`.
    """

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {}

    config: Config
    server: _WorkerServer | None = None
    _quitting = False

    # ---- boot -----------------------------------------------------------------------

    def init_process(self) -> None:
        # In the worker process only: Worker.__init__ runs in the arbiter before the fork.
        self._route_logging()
        super().init_process()

    def _route_logging(self) -> None:
        """Everything our server says goes to Gunicorn's error log, at Gunicorn's --log-level.

        The access log is Gunicorn's own logger, called through GunicornAccessLog below, so
        --access-logformat applies; the core's own access-log line is switched off.
        """
        error_logger = logging.getLogger(ERROR_LOGGER)
        error_logger.handlers = self.log.error_log.handlers
        error_logger.setLevel(self.log.error_log.level)
        error_logger.propagate = False

    def run(self) -> None:
        # Gunicorn counts the worker as booted once the app imported; a failure from here
        # to the first request is still a boot failure, and must say so with exit 3, or
        # the arbiter forks replacements that fail the same way, forever.
        try:
            self.config = Config(**self.config_kwargs())
        except Exception as exc:  # noqa: BLE001 - reported to the arbiter as a boot failure
            self.log.error("Invalid dbridge-asgi configuration: %s", exc)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

        if self.config.is_ssl:
            # Gunicorn's --keyfile/--certfile, loaded before the app as uvicorn does. A file
            # that cannot be used is a boot failure for the arbiter (it stops), not an
            # exit 1 it would answer by forking the same failure again and again.
            try:
                self.config.load_tls()
            except SystemExit:
                sys.exit(Arbiter.WORKER_BOOT_ERROR)

        if self._access_log_wanted():
            # Imported and wrapped here rather than in Server: only this worker knows Gunicorn's logger.
            self.config.load()
            self.config.loaded_app = GunicornAccessLog(self.config.loaded_app, self.log)

        if not self.alive:
            return  # SIGTERM while booting: nothing to drain
        self.server = _WorkerServer(self.config, self)
        self.server.run(sockets=self.sockets)
        if not self.server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def config_kwargs(self) -> dict[str, Any]:
        """Gunicorn's settings as our Config's keywords, then CONFIG_KWARGS on top."""
        cfg = self.cfg
        kwargs: dict[str, Any] = {
            "app": self.wsgi,
            # Gunicorn has configured logging (--log-config, --log-level); ours must not redo it.
            "log_config": None,
            "access_log": False,
            "timeout_keep_alive": cfg.keepalive,
            "timeout_graceful_shutdown": cfg.graceful_timeout,
            # Gunicorn already added the random --max-requests-jitter to self.max_requests.
            "limit_max_requests": self.max_requests if cfg.max_requests > 0 else None,
            # Gunicorn's "maximum number of simultaneous clients" per worker; past it the
            # core answers 503, as uvicorn's --limit-concurrency (uvicorn's worker ignores it).
            "limit_concurrency": cfg.worker_connections or None,
            "forwarded_allow_ips": cfg.forwarded_allow_ips,
            "backlog": cfg.backlog,
            **_request_head_limits(
                cfg.limit_request_line, cfg.limit_request_fields, cfg.limit_request_field_size
            ),
        }
        if cfg.is_ssl:
            ssl = cfg.ssl_options
            kwargs.update(
                ssl_keyfile=ssl.get("keyfile"),
                ssl_certfile=ssl.get("certfile"),
                ssl_keyfile_password=ssl.get("password"),
                ssl_version=ssl.get("ssl_version"),
                ssl_cert_reqs=ssl.get("cert_reqs"),
                ssl_ca_certs=ssl.get("ca_certs"),
                ssl_ciphers=ssl.get("ciphers"),
            )
        kwargs.update(self.CONFIG_KWARGS)
        return kwargs

    def _access_log_wanted(self) -> bool:
        # Gunicorn's logger says whether anything would be written (no --access-logfile: no).
        # A logger class with its own access() (the statsd one counts requests) always is.
        if type(self.log).access is not glogging.Logger.access:
            return True
        return bool(getattr(self.log, "access_log_enabled", self.cfg.accesslog))

    # ---- the heartbeat ----------------------------------------------------------------

    async def heartbeat(self, server: Server) -> None:
        """Tells the arbiter this worker's loop is alive, until the task is cancelled.

        A task on the serving loop on purpose: an app that blocks the loop (a sync call in
        an `async def`) stops the beats, and the arbiter kills the worker after --timeout.
        """
        interval = min(self.timeout or HEARTBEAT_INTERVAL_MAX, HEARTBEAT_INTERVAL_MAX)
        while True:
            self.notify()
            if os.getppid() != self.ppid and not server.should_exit:
                # The arbiter died (we were re-parented): nobody will stop or replace us.
                self.log.info("Parent changed, shutting down: %s", self)
                server.should_exit = True
            await asyncio.sleep(interval)

    # ---- signals ----------------------------------------------------------------------

    def init_signals(self) -> None:
        """Gunicorn's worker signals, on an asyncio server.

        While the server runs it owns SIGTERM and SIGINT (_WorkerServer.handle_exit); the
        handlers here cover the time before (a SIGTERM then ends the worker before it
        serves) and after (a second SIGTERM from a process-group kill must not turn a clean
        exit into death by signal).
        """
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, self.handle_exit)
        signal.signal(signal.SIGINT, self.handle_quit)
        signal.signal(signal.SIGQUIT, self.handle_quit)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.signal(signal.SIGABRT, self.handle_abort)
        signal.signal(signal.SIGWINCH, self.handle_winch)
        # The arbiter's signals (reload, more or fewer workers): only meant for it. A handler
        # rather than SIG_IGN, which processes the app starts would inherit.
        for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, self.handle_arbiter_signal)
        # As Gunicorn: neither a graceful stop nor a log reopen makes a system call fail with EINTR.
        signal.siginterrupt(signal.SIGTERM, False)
        signal.siginterrupt(signal.SIGUSR1, False)

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        """SIGQUIT (and SIGINT): stop now: no draining, no lifespan shutdown."""
        self.alive = False
        if self._quitting:
            return
        self._quitting = True
        self.cfg.worker_int(self)
        server = self.server
        if server is None:
            sys.exit(0)
        server.force_exit = True
        server.should_exit = True

    def handle_usr1(self, sig: int, frame: FrameType | None) -> None:
        # On the loop, between two callbacks, rather than in the middle of whatever the
        # signal interrupted (a log handler half-way through a write, say).
        loop = self.server.loop if self.server is not None else None
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self.log.reopen_files)
        else:
            self.log.reopen_files()

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        """SIGABRT: the arbiter saw no heartbeat for --timeout and gave up on this worker.

        Gunicorn's worker raises SystemExit here; in the middle of an app call that would be
        caught as an app error and the stuck worker would carry on, so exit for real.
        """
        self.alive = False
        self.cfg.worker_abort(self)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    def handle_arbiter_signal(self, sig: int, frame: FrameType | None) -> None:
        self.log.debug("worker: %s ignored.", signal.Signals(sig).name)


class _WorkerServer(Server):
    """Our Server with the Gunicorn worker's heartbeat beside it and Gunicorn's meaning of SIGINT."""

    def __init__(self, config: Config, worker: DBridgeWorker) -> None:
        super().__init__(config)
        self._worker = worker
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Sequence[Any] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        heartbeat = self.loop.create_task(self._worker.heartbeat(self))
        try:
            await super().serve(sockets=sockets)
        finally:
            heartbeat.cancel()
            self.loop = None

    async def shutdown(self) -> None:
        if self._worker.alive:
            # Not a signal but --max-requests (or a lost arbiter): a recycle, while the
            # other workers serve on. Accept nothing more and let the connections end by
            # themselves, each after a response that says "connection: close" or at its
            # keep-alive timeout, before the usual shutdown closes whatever is left.
            # Closing idle keep-alive connections at once would race requests already on
            # their way (clients see "server disconnected"); this wait is what avoids it.
            await self._wait_for_connections_to_end()
        await super().shutdown()

    async def _wait_for_connections_to_end(self) -> None:
        worker, config = self.worker, self.config
        worker.stop_accepting()
        loop = asyncio.get_running_loop()
        bound = config.timeout_keep_alive + RECYCLE_DRAIN_MARGIN
        if config.timeout_graceful_shutdown is not None:
            bound = min(bound, config.timeout_graceful_shutdown)
        deadline = loop.time() + bound
        while worker.open_connections and self._worker.alive and loop.time() < deadline:
            await self._sleep_unless_woken(DRAIN_POLL_INTERVAL)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGINT:
            # Gunicorn: SIGINT is a quick shutdown, like SIGQUIT (Ctrl+C reaches the
            # whole process group; the arbiter follows it with SIGQUIT).
            self._worker.handle_quit(sig, frame)
            return
        self._worker.alive = False
        super().handle_exit(sig, frame)


class GunicornAccessLog:
    """ASGI middleware: one call of Gunicorn's `Logger.access()` per HTTP response.

    Gunicorn builds the line from --access-logformat and the atoms it reads from a WSGI-like
    `environ`, a response (status, headers, bytes sent), the request's headers and the
    duration; this collects them from the scope and the messages the app sends. Installed
    only when the access log is on, so the default set-up pays nothing per request.
    """

    def __init__(self, app: Any, log: Any) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        response = _AccessResponse()

        async def send_and_record(message: dict[str, Any]) -> None:
            message_type = message["type"]
            if message_type == "http.response.start":
                response.status = message["status"]
                response.headers = _DecodedHeaders(message.get("headers", ()))
            elif message_type == "http.response.body":
                response.sent += len(message.get("body", b""))
            await send(message)
            if message_type == "http.response.pathsend":
                # After the send: a path the core refused is the app's error, not ours.
                response.sent += os.path.getsize(message["path"])
            if message_type == "http.response.pathsend" or (
                message_type == "http.response.body" and not message.get("more_body", False)
            ):
                # Logged when the response is complete, not when the app returns: work the
                # app does after it (background tasks) is not the client's wait.
                self._log(scope, response, started)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            if not response.logged:
                if response.status is None:
                    # The core answers 500 for an app that raised or sent nothing.
                    response.status = 500
                    response.sent = None
                self._log(scope, response, started)

    def _log(self, scope: dict[str, Any], response: _AccessResponse, started: float) -> None:
        response.logged = True
        duration = datetime.timedelta(seconds=time.monotonic() - started)
        request = _AccessRequest(scope)
        self.log.access(response, request, request.environ(), duration)


class _AccessResponse:
    """What Gunicorn's atoms read from a response: status (%(s)s), headers ({name}o), bytes sent (%(b)s)."""

    __slots__ = ("headers", "logged", "sent", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers = _DecodedHeaders(())
        self.sent: int | None = 0
        self.logged = False


class _DecodedHeaders:
    """ASGI's (bytes, bytes) header pairs as the (str, str) pairs Gunicorn's atoms expect, decoded on use."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def items(self) -> list[tuple[str, str]]:
        return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in self._raw]


class _AccessRequest:
    """The request as Gunicorn's atoms read it: `headers` ({name}i) and a WSGI-like environ."""

    __slots__ = ("headers", "scope")

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        self.headers = _DecodedHeaders(scope["headers"])

    def environ(self) -> dict[str, Any]:
        """The keys Gunicorn's atoms look up (h, r, m, U, q, H, f, a, u, {NAME}e), as a WSGI server sets them."""
        scope = self.scope
        query = scope["query_string"].decode("latin-1")
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path is not None else scope["path"]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope["method"],
            "RAW_URI": f"{path}?{query}" if query else path,
            "PATH_INFO": scope["path"],
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": "HTTP/" + scope["http_version"],
            "wsgi.url_scheme": scope["scheme"],
        }
        client = scope.get("client")
        if client:
            environ["REMOTE_ADDR"] = client[0]
            environ["REMOTE_PORT"] = str(client[1])
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            # PEP 3333: repeated fields are joined with a comma.
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ


def _request_head_limits(line: int, fields: int, field_size: int) -> dict[str, int]:
    """Gunicorn's --limit-request-* settings as the core's limits, read as Gunicorn's parser reads them.

    The core limits the whole header section, not each field, so --limit-request-field_size
    becomes the bound Gunicorn's own parser buffers a header section to (fields × (size + 2)):
    no request Gunicorn accepts is refused; one field may be longer than Gunicorn allows.
    """
    if line == 0:
        line = GUNICORN_UNLIMITED_REQUEST_LINE
    elif line < 0 or line > GUNICORN_MAX_REQUEST_LINE:
        line = GUNICORN_MAX_REQUEST_LINE
    if fields <= 0 or fields > GUNICORN_MAX_HEADERS:
        fields = GUNICORN_MAX_HEADERS
    if field_size <= 0:
        field_size = GUNICORN_DEFAULT_HEADER_FIELD_SIZE
    return {
        "limit_request_line": line,
        "limit_request_fields": fields,
        # + 2 for each field's CRLF, + 2 for the empty line that ends the section.
        "limit_request_field_size": fields * (field_size + 2) + 2,
    }


