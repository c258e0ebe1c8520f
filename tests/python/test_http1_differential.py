"""The corpus sent to dbridge-asgi and to uvicorn (h11, httptools) in this test session.

Disagreement is information: this test does not judge the answers (test_http1_corpus.py
holds dbridge-asgi to the corpus). It fails only if the run itself breaks: a server that
dies or cannot start, a case that gets no observation, a page that does not render.
The page goes to the test's temporary directory; docs/http1-differential.md is written
by running tests/python/http1_differential.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from asgi_servers import ServerProcess
from http1_corpus import load_cases
from http1_differential import (
    CONTENDERS,
    render_markdown,
    run_differential,
    start_contenders,
    stop_contenders,
)


@pytest.fixture(scope="module")
def contenders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    servers = start_contenders(tmp_path_factory.mktemp("http1-differential"))
    try:
        yield servers
    finally:
        stop_contenders(servers)


def test_differential_runs_every_case_on_every_server(
    contenders: dict[str, ServerProcess], tmp_path: Path
) -> None:
    cases = load_cases()
    results = run_differential(contenders, cases)

    labels = [c.label for c in CONTENDERS]
    missing = [(case.id, label) for case in cases for label in labels if (case.id, label) not in results]
    assert not missing, f"no observation for {missing[:10]}"
    for label, server in contenders.items():
        assert server.alive(), f"{label} died during the differential run: {server.describe_exit()}"

    page = render_markdown(cases, results)
    (tmp_path / "http1-differential.md").write_text(page, encoding="utf-8")
    for case in cases:
        assert f"| {case.id.replace('_', chr(92) + '_')} |" in page, f"{case.id} is missing from the page"
