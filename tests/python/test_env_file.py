"""--env-file: variables from a dotenv file reach the process before the app is imported (uvicorn's
behaviour, through python-dotenv)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dbridge_asgi.config import Config


def test_env_file_sets_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBRIDGE_TEST_FROM_ENV_FILE", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("DBRIDGE_TEST_FROM_ENV_FILE=loaded # a comment\n")
    try:
        Config("cfgapps:asgi3_function", log_config=None, env_file=env_file)
        assert os.environ.get("DBRIDGE_TEST_FROM_ENV_FILE") == "loaded"
    finally:
        os.environ.pop("DBRIDGE_TEST_FROM_ENV_FILE", None)


def test_env_file_does_not_override_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # python-dotenv's default, which uvicorn keeps: the real environment wins.
    monkeypatch.setenv("DBRIDGE_TEST_FROM_ENV_FILE", "from-environment")
    env_file = tmp_path / ".env"
    env_file.write_text("DBRIDGE_TEST_FROM_ENV_FILE=from-file\n")
    Config("cfgapps:asgi3_function", log_config=None, env_file=env_file)
    assert os.environ["DBRIDGE_TEST_FROM_ENV_FILE"] == "from-environment"
