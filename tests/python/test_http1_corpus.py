"""The HTTP/1.1 smuggling and malformed-input corpus against a real dbridge-asgi, strictly.

Every case of tests/corpus/http1.toml goes over a fresh raw socket to one dbridge-asgi
process per I/O backend serving tests/apps/echo_app.py, which answers every request it
is handed with its method, path, body length and body hash. The responses must be
exactly the ones the case lists, in order (so a request smuggled past the framing would
show up as an extra or a different app answer), then the connection must close cleanly
or serve one more request. Cases the server is known to get wrong are strict xfails,
with the reason in the corpus.

The same cases against uvicorn (h11, httptools) are in test_http1_differential.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgi_servers import IO_BACKENDS, ServerProcess, serve
from http1_corpus import load_cases, run_strict

APP = "echo_app:app"
CASE_TIMEOUT = 10.0  # seconds any single read may take before the case fails

CASES = load_cases()


def _param(case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module", params=IO_BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from serve(
        "dbridge-asgi", APP, tmp_path_factory.mktemp(f"corpus-{request.param}"), io=request.param
    )


def test_corpus_is_large_and_sourced():
    assert len(CASES) >= 150, f"the corpus has {len(CASES)} cases"
    assert all(case.source for case in CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(server: ServerProcess, case) -> None:
    with server.connect(timeout=CASE_TIMEOUT) as sock:
        run_strict(sock, case)
    assert server.alive(), f"{server.label} died on {case.id}: {server.describe_exit()}"
