"""The soak's verdict (load/soak.py judge()) on made-up runs: the soak itself takes
minutes (`make soak`); what is tested here is that it fails what it should fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "load" / "soak.py"
spec = importlib.util.spec_from_file_location("soak", SOAK)
soak = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soak)

MIB = 2**20


def run(rss_mib_per_minute: float = 0.0, fd_step: int = 0, failures: list[dict] | None = None,
        requests: int = 60_000):
    # 10 minutes sampled every 10 s, a 2-minute warm-up; the RSS wobbles by a page.
    samples = [
        {"minute": i / 6, "rss": 80 * MIB + int(rss_mib_per_minute * MIB * i / 6) + (i % 2) * 4096,
         "fds": 20 + fd_step * (i // 6)}
        for i in range(1, 61)
    ]
    return soak.judge(samples, warmup=2.0, requests=requests, seconds=600.0, failures=failures or [],
                      max_slope=1.0, users=10)


def test_a_flat_run_passes_and_reports_the_slope_per_request() -> None:
    figures, verdict = run()
    assert verdict == []
    assert abs(figures["rss_slope_mib_per_minute"]) < 0.01
    assert figures["requests_per_second"] == 100.0
    assert figures["fd_growth"] == 0


def test_a_steady_rss_growth_fails_with_its_slope() -> None:
    figures, verdict = run(rss_mib_per_minute=2.0)
    assert figures["rss_slope_mib_per_minute"] == pytest.approx(2.0, rel=0.01)
    # 2 MiB a minute at 100 requests a second: about 350 bytes a request.
    assert figures["rss_slope_bytes_per_request"] == pytest.approx(2 * MIB / 6000, rel=0.01)
    assert verdict == ["RSS grows by 2.000 MiB/min"]


def test_descriptors_growing_beyond_the_user_count_fail() -> None:
    _, verdict = run(fd_step=2)  # +2 a minute over 8 judged minutes
    assert verdict == ["open descriptors grew by 16"]


def test_every_locust_failure_is_named() -> None:
    failures = [
        {"method": "GET", "name": "/stream", "error": "HTTPError('500 Server Error')", "occurrences": 3},
        {"method": "POST", "name": "/echo", "error": "ConnectionResetError(104)", "occurrences": 1},
    ]
    figures, verdict = run(failures=failures)
    assert figures["failed_requests"] == 4
    assert verdict == [
        "3 × GET /stream: HTTPError('500 Server Error')",
        "1 × POST /echo: ConnectionResetError(104)",
    ]


def test_a_run_without_requests_fails() -> None:
    _, verdict = run(requests=0)
    assert verdict == ["no request was answered"]


def test_locust_failures_are_read_from_its_csv(tmp_path: Path) -> None:
    from dbridge_bench.loadgen import locust_failures

    prefix = tmp_path / "locust"
    assert locust_failures(prefix) == []  # no file: nothing failed
    (tmp_path / "locust_failures.csv").write_text(
        "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
        'GET,/stream,"HTTPError(\'500 Server Error\')",3,1700000000,1700000100\n'
    )
    assert locust_failures(prefix) == [
        {"method": "GET", "name": "/stream", "error": "HTTPError('500 Server Error')", "occurrences": 3}
    ]
