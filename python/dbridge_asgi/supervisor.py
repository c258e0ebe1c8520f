"""`--workers N`: a parent process that keeps N server processes serving one socket.

Behaves as uvicorn's multiprocess supervisor (uvicorn/supervisors/multiprocess.py, 0.54):
the same signals, log lines and health check. Where we differ, on purpose:

- Children are forked, not spawned. The parent never loads the app or creates an event
  loop or a reactor (each child creates its own io_uring ring after the fork, so no ring is
  ever shared), and a fork starts a child in milliseconds with the socket already there,
  where spawn re-imports everything and pickles the Config.
- The parent binds the socket once and every child accepts on it, as uvicorn does, rather
  than one SO_REUSEPORT socket per child: connections waiting in the backlog of a child
  that exits (rolling restart, --limit-max-requests, a crash) would be reset with
  SO_REUSEPORT; on one shared socket the other children take them.
- A child that exits 3 (the app does not import, lifespan startup failed) stops all
  children and the parent exits 3, as Gunicorn does; uvicorn 0.54 stops too but exits 0.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

import click

from dbridge_asgi.config import STARTUP_FAILURE, Config
from dbridge_asgi.logging import ERROR_LOGGER

logger = logging.getLogger(ERROR_LOGGER)

# The signals the parent acts on; uvicorn's set, less the Windows-only SIGBREAK.
SIGNALS = {
    getattr(signal, f"SIG{name}"): name
    for name in ("INT", "TERM", "HUP", "QUIT", "TTIN", "TTOU", "USR1", "USR2", "WINCH")
    if hasattr(signal, f"SIG{name}")
}

# How often the parent reaps children and pings them (uvicorn's period).
CHECK_INTERVAL = 0.5

# The health check over each child's socketpair: the parent asks, the child answers whether
# its server has started (uvicorn's pong carries the same flag).
PING = b"?"
STARTED = b"1"
STARTING = b"0"


def log_process(message: str, pid: int, level: int = logging.INFO) -> None:
    """A "... [PID]" line, the PID in cyan when colours are on (as uvicorn's)."""
    logger.log(
        level,
        message.replace("{pid}", "%d"),
        pid,
        extra={"color_message": message.replace("{pid}", click.style("%d", fg="cyan", bold=True))},
    )


class WorkerProcess:
    """One forked child running a Server on the shared sockets."""

    def __init__(self, config: Config, sockets: Sequence[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.pid = 0
        self.exit_code: int | None = None
        self.channel: socket.socket | None = None  # the parent's end of the health-check socketpair

    def start(self, close_in_child: Sequence[socket.socket]) -> None:
        """Forks; the child serves and never returns. `close_in_child`: the parent's own sockets."""
        parent_end, child_end = socket.socketpair()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:
            parent_end.close()
            for sock in close_in_child:
                sock.close()
            os._exit(_serve_in_child(self.config, self.sockets, child_end))
        child_end.close()
        self.pid = pid
        self.channel = parent_end

    # ---- health ---------------------------------------------------------------------

    def send_ping(self) -> bool:
        try:
            assert self.channel is not None
            self.channel.send(PING)
            return True
        except OSError:
            return False

    def read_answer(self) -> bytes | None:
        """The child's answer if one is waiting: STARTED or STARTING; None if none (or it is gone)."""
        try:
            assert self.channel is not None
            data = self.channel.recv(64, socket.MSG_DONTWAIT)
        except (BlockingIOError, OSError):
            return None
        return data[-1:] if data else None

    def fileno(self) -> int:
        assert self.channel is not None
        return self.channel.fileno()

    def wait_until_started(self, timeout: float, stop_requested: Callable[[], bool]) -> bool:
        """True once the child's server serves; False if it exits, takes longer than `timeout`,
        or the parent is asked to stop meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stop_requested() or self.poll() is not None or not self.send_ping():
                return False
            ready, _, _ = select.select([self], [], [], min(1.0, max(0.0, deadline - time.monotonic())))
            if ready and self.read_answer() == STARTED:
                return True
            time.sleep(0.1)
        return False

    # ---- life -----------------------------------------------------------------------

    def poll(self) -> int | None:
        """The exit code if the child has ended (negative: killed by that signal), else None."""
        if self.exit_code is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.exit_code
            if pid != 0:
                self._ended(status)
        return self.exit_code

    def terminate(self) -> None:
        """SIGTERM: the child's server shuts down gracefully."""
        if self.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            log_process("Terminated child process [{pid}]", self.pid)

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)

    def join(self) -> None:
        log_process("Waiting for child process [{pid}]", self.pid)
        if self.exit_code is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                return
            self._ended(status)

    def _ended(self, status: int) -> None:
        self.exit_code = os.waitstatus_to_exitcode(status)
        if self.channel is not None:
            self.channel.close()


def _serve_in_child(config: Config, sockets: Sequence[socket.socket], channel: socket.socket) -> int:
    """The child's whole life after the fork: the exit code for os._exit."""
    from dbridge_asgi.server import Server

    # The parent's handlers and wake-up fd are the parent's business.
    signal.set_wakeup_fd(-1)
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    server = Server(config=config)
    threading.Thread(target=_answer_pings, args=(channel, server), daemon=True).start()
    try:
        server.run(sockets=sockets)
        code = 0 if server.started else STARTUP_FAILURE
    except KeyboardInterrupt:
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # a child must end in os._exit, never return into the parent's code
        # Before the server started (an exception while importing the app) this is a boot
        # failure: a new child would fail the same way.
        logger.exception("Exception in child process [%d]", os.getpid())
        code = 1 if server.started else STARTUP_FAILURE
    finally:
        # os._exit skips the interpreter's clean-up: flush what was logged.
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - nothing left to report it to
                pass
    return code


def _answer_pings(channel: socket.socket, server: object) -> None:
    # A thread, as in uvicorn: the answer says the process lives, even while its event loop
    # is busy with a slow request.
    while True:
        try:
            if not channel.recv(64):
                return
            channel.send(STARTED if getattr(server, "started", False) else STARTING)
        except OSError:
            return


class Supervisor:
    def __init__(self, config: Config, sockets: Sequence[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.processes_num = config.workers
        self.processes: list[WorkerProcess] = []
        self.should_exit = False
        self.exit_code = 0
        self._signal_queue: list[int] = []
        self._wake_reader, self._wake_writer = socket.socketpair()

    def run(self) -> int:
        """Serves until SIGINT/SIGTERM (exit code 0) or a child's failed startup (3)."""
        log_process("Started parent process [{pid}]", os.getpid())
        self._wake_writer.setblocking(False)
        self._wake_reader.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(self._wake_writer.fileno())
        previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNALS}
        try:
            for _ in range(self.processes_num):
                self.processes.append(self._fork())
            while not self.should_exit:
                self._sleep(CHECK_INTERVAL)
                self._handle_signals()
                self._keep_processes_alive()
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            self._wake_reader.close()
            self._wake_writer.close()
        log_process("Stopping parent process [{pid}]", os.getpid())
        return self.exit_code

    # ---- processes ------------------------------------------------------------------

    def _fork(self) -> WorkerProcess:
        """A new child, started; the caller puts it in self.processes."""
        process = WorkerProcess(self.config, self.sockets)
        parents_own = [self._wake_reader, self._wake_writer]
        parents_own += [p.channel for p in self.processes if p.channel is not None]
        process.start(close_in_child=parents_own)
        return process

    def _keep_processes_alive(self) -> None:
        """Replaces children that died or do not answer the health check in time."""
        if self.should_exit:
            return
        self._kill_unresponsive()
        for index, process in enumerate(list(self.processes)):
            code = process.poll()
            if code is None:
                continue
            if code == STARTUP_FAILURE:
                # The app or its startup is broken and would fail the same way in every
                # new child: stop instead of restarting in a loop.
                log_process(
                    "Child process [{pid}] failed to start, stopping the parent process.",
                    process.pid,
                    logging.ERROR,
                )
                self.exit_code = STARTUP_FAILURE
                self.should_exit = True
                return
            log_process("Child process [{pid}] died", process.pid)
            self.processes[index] = self._fork()

    def _kill_unresponsive(self) -> None:
        timeout = self.config.timeout_worker_healthcheck
        waiting = [process for process in self.processes if process.poll() is None and process.send_ping()]
        deadline = time.monotonic() + timeout
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select(waiting, [], [], remaining)
            for process in ready:
                process.read_answer()
                waiting.remove(process)
        for process in waiting:
            if process.poll() is None:
                logger.warning(
                    "Child process [%d] did not answer the health check within %s s; killing it.",
                    process.pid,
                    timeout,
                )
                process.kill()
                process.join()

    def _stop_all(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join()

    def _restart_all(self) -> None:
        """A rolling restart: each new child serves before the one it replaces is stopped (uvicorn 0.54).

        A new child that does not start (new code that fails to import) is dropped and the
        old children keep serving: a bad deploy does not take the service down.
        """
        for index, old in enumerate(list(self.processes)):
            if self._stop_requested():
                return
            new = self._fork()
            if not new.wait_until_started(self.config.timeout_worker_healthcheck, self._stop_requested):
                new.kill()
                new.join()
                if not self._stop_requested():
                    logger.error(
                        "New child process [%d] was not ready in time; keeping worker [%d] and aborting the "
                        "restart.",
                        new.pid,
                        old.pid,
                    )
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    # ---- signals --------------------------------------------------------------------

    def _stop_requested(self) -> bool:
        return self.should_exit or any(sig in (signal.SIGINT, signal.SIGTERM) for sig in self._signal_queue)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        # Only queued here; acted on by the main loop, outside the signal handler.
        self._signal_queue.append(sig)

    def _sleep(self, seconds: float) -> None:
        # The wake-up fd ends the wait as soon as a signal arrives.
        select.select([self._wake_reader], [], [], seconds)
        try:
            while self._wake_reader.recv(512):
                pass
        except (BlockingIOError, OSError):
            pass

    def _handle_signals(self) -> None:
        while self._signal_queue:
            sig = self._signal_queue.pop(0)
            handler = getattr(self, f"_handle_{SIGNALS[sig].lower()}", None)
            if handler is not None:
                handler()
            else:
                logger.debug("Received signal SIG%s, but no handler is defined for it.", SIGNALS[sig])

    def _handle_int(self) -> None:
        logger.info("Received SIGINT, exiting.")
        self.should_exit = True

    def _handle_term(self) -> None:
        logger.info("Received SIGTERM, exiting.")
        self.should_exit = True

    def _handle_hup(self) -> None:
        logger.info("Received SIGHUP, restarting processes.")
        self._restart_all()

    def _handle_ttin(self) -> None:
        logger.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self._fork())

    def _handle_ttou(self) -> None:
        logger.info("Received SIGTTOU, decreasing number of processes.")
        if self.processes_num <= 1:
            logger.info("Already reached one process, cannot decrease the number of processes anymore.")
            return
        self.processes_num -= 1
        process = self.processes.pop()
        process.terminate()
        process.join()
