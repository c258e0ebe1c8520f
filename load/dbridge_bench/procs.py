"""Processes the harness starts: pinned, in their own session, stopped by PID; their CPU
time and memory read from /proc for the whole process tree (a server with workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Sequence

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
STOP_TIMEOUT = 10.0


class BenchError(Exception):
    """Something made the measurement impossible; the message says what."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: Sequence[str], cpus: str, log: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    """`command` pinned to `cpus` (taskset), output to `log`, in a session of its own."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["taskset", "-c", cpus, *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(cwd) if cwd else None,
            env=env,
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT; always reaped."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    # Children a server left behind (workers) go with the group.
    _signal_group(process, signal.SIGKILL)
    if process.poll() is None:
        process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tree(pid: int) -> list[int]:
    """pid and its descendants, from /proc/*/stat parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    result, todo = [], [pid]
    while todo:
        p = todo.pop()
        result.append(p)
        todo.extend(children.get(p, []))
    return result


def cpu_seconds(pid: int) -> float:
    """utime + stime of pid's tree, including children it has reaped (cutime + cstime)."""
    total = 0
    for p in tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident memory of pid's tree now."""
    total = 0
    for p in tree(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue
    return total


def wait_until_serving(process: subprocess.Popen, port: int, probe: bytes, log: Path, name: str,
                       timeout: float = 30.0) -> None:
    """Until `probe` (a whole HTTP request) gets a response on port, or fail with the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{name} exited with {process.returncode} at start:\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(probe)
                if s.recv(16).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{name} did not answer on port {port} within {timeout:.0f} s:\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
