"""The extension module `dbridge_asgi._core` as Python sees it (installed by `make install`)."""

from __future__ import annotations

import importlib

import pytest


@pytest.fixture(scope="module")
def core():
    try:
        return importlib.import_module("dbridge_asgi._core")
    except ImportError as e:
        pytest.fail(f"dbridge_asgi._core is not importable ({e}): run `make install` first", pytrace=False)


def test_probe_io_reports_whether_uring_is_usable_and_why(core):
    result = core.probe_io()
    assert isinstance(result, dict)
    assert set(result) == {"uring", "reason"}
    assert isinstance(result["uring"], bool)
    assert isinstance(result["reason"], str)
    if not result["uring"]:
        assert result["reason"], "when io_uring is not usable, the reason must say why"


def test_select_backend_epoll_gives_epoll_and_a_reason(core):
    backend, reason = core.select_backend("epoll")
    assert backend == "epoll"
    assert isinstance(reason, str) and reason


def test_select_backend_auto_agrees_with_probe_io(core):
    backend, _ = core.select_backend("auto")
    assert backend == ("io_uring" if core.probe_io()["uring"] else "epoll")


def test_select_backend_rejects_an_unknown_choice_with_value_error(core):
    with pytest.raises(ValueError):
        core.select_backend("bogus")
