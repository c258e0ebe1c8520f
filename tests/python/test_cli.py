"""The `dbridge-asgi` command: options, environment variables and startup errors, as uvicorn's.

Option parsing is checked in-process with click's CliRunner and the Server replaced by a
recorder (no socket is opened); exit codes and error lines are checked on a real
`python -m dbridge_asgi` process, since they come from sys.exit and the log handlers.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from dbridge_asgi.config import STARTUP_FAILURE, Config
from shell_support import preserved_process_state, run_cli, write_module

# The module: the package's `main` attribute is the command itself, as in uvicorn.
cli = importlib.import_module("dbridge_asgi.main")

ASGI3_APP = """
async def app(scope, receive, send):
    pass
"""

OPTIONS_IN_HELP = [
    "--host",
    "--port",
    "--uds",
    "--fd",
    "--loop",
    "--lifespan",
    "--log-level",
    "--access-log",
    "--no-access-log",
    "--factory",
    "--app-dir",
    "--root-path",
    "--interface",
    "--timeout-keep-alive",
    "--limit-concurrency",
    "--backlog",
    "--server-header",
    "--no-server-header",
    "--date-header",
    "--no-date-header",
    "--header",
    "--timeout-graceful-shutdown",
    "--io",
    "--header-timeout",
    "--workers",
    "--limit-max-requests-jitter",
    "--timeout-worker-healthcheck",
    "--reload-dir",
    "--reload-include",
    "--reload-exclude",
    "--reload-delay",
]


class RecordingServer:
    """Stands in for Server: keeps the Config the CLI built and reports a clean start."""

    configs: ClassVar[list[Config]] = []

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = False

    def run(self, sockets: Any = None) -> None:
        RecordingServer.configs.append(self.config)
        self.started = True


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory holding `cliapp.py`, and our loggers and sys.path put back afterwards."""
    write_module(tmp_path, "cliapp", ASGI3_APP)
    with preserved_process_state(tmp_path):
        yield tmp_path


@pytest.fixture
def recorded_configs(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    RecordingServer.configs = []
    monkeypatch.setattr(cli, "Server", RecordingServer)
    return RecordingServer.configs


def invoke(args: list[str], env: Any = None) -> Any:
    # The runner's env only adds; clear anything the developer's shell exports.
    clean = {name: None for name in _inherited_server_envvars()}
    clean.update(env or {})
    return CliRunner().invoke(cli.main, args, env=clean, catch_exceptions=False)


def _inherited_server_envvars() -> list[str]:
    return [n for n in os.environ if n.startswith(("DBRIDGE_ASGI_", "UVICORN_")) or n == "WEB_CONCURRENCY"]


def only_config(configs: list[Config]) -> Config:
    assert len(configs) == 1, f"expected the server to be run once, it ran {len(configs)} times"
    return configs[0]


# ---- help and choices -----------------------------------------------------------------


def test_help_lists_every_option() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0, result.output
    missing = [option for option in OPTIONS_IN_HELP if option not in result.output]
    assert not missing, f"--help does not mention {missing}:\n{result.output}"


def test_help_shows_the_choices() -> None:
    result = invoke(["--help"])
    for choices in ("[auto|on|off]", "[auto|asyncio|uvloop|ring]", "[auto|uring|epoll]", "[auto|asgi3|asgi2]"):
        assert choices in result.output


def test_version_names_the_package_and_python() -> None:
    import dbridge_asgi

    result = invoke(["--version"])
    assert result.exit_code == 0
    assert f"dbridge-asgi {dbridge_asgi.__version__}" in result.output
    assert "Python" in result.output or "CPython" in result.output


@pytest.mark.parametrize(
    "args, option",
    [
        (["--lifespan", "sometimes"], "--lifespan"),
        (["--loop", "trio"], "--loop"),
        (["--io", "kqueue"], "--io"),
        (["--interface", "wsgi"], "--interface"),
        (["--log-level", "loud"], "--log-level"),
        (["--port", "eighty"], "--port"),
    ],
)
def test_rejects_invalid_option_value_with_usage_error(args: list[str], option: str) -> None:
    result = invoke(["cliapp:app", *args])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output


def test_missing_app_argument_is_a_usage_error() -> None:
    result = invoke([])
    assert result.exit_code == 2
    assert "Missing argument 'APP'" in result.output


def test_header_without_colon_is_a_usage_error() -> None:
    result = invoke(["cliapp:app", "--header", "x-no-value"])
    assert result.exit_code == 2
    assert "Invalid value for '--header'" in result.output


# ---- options reach Config -------------------------------------------------------------


def test_defaults_are_uvicorns(app_dir: Path, recorded_configs: list[Config]) -> None:
    result = invoke(["cliapp:app", "--app-dir", str(app_dir)])
    assert result.exit_code == 0, result.output
    config = only_config(recorded_configs)
    assert (config.host, config.port, config.uds, config.fd) == ("127.0.0.1", 8000, None, None)
    assert (config.loop, config.lifespan, config.interface, config.io) == ("auto", "auto", "auto", "auto")
    assert config.backlog == 2048
    assert config.timeout_keep_alive == 5
    assert config.timeout_graceful_shutdown is None
    assert config.limit_concurrency is None
    assert config.access_log and config.server_header and config.date_header
    assert config.root_path == ""
    assert config.headers == []
    assert config.workers == 1
    assert config.header_timeout == 30.0


def test_command_line_options_reach_config(app_dir: Path, recorded_configs: list[Config]) -> None:
    result = invoke(
        [
            "cliapp:app",
            "--app-dir", str(app_dir),
            "--host", "0.0.0.0",
            "--port", "9001",
            "--loop", "asyncio",
            "--io", "epoll",
            "--lifespan", "off",
            "--interface", "asgi3",
            "--no-access-log",
            "--no-server-header",
            "--no-date-header",
            "--root-path", "/api",
            "--limit-concurrency", "64",
            "--backlog", "128",
            "--timeout-keep-alive", "7",
            "--timeout-graceful-shutdown", "11",
            "--header-timeout", "2.5",
            "--header", "X-Frame-Options: DENY",
            "--header", "x-team:edge",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = only_config(recorded_configs)
    assert (config.host, config.port) == ("0.0.0.0", 9001)
    assert (config.loop, config.io, config.lifespan, config.interface) == ("asyncio", "epoll", "off", "asgi3")
    assert not config.access_log and not config.server_header and not config.date_header
    assert config.root_path == "/api"
    assert (config.limit_concurrency, config.backlog) == (64, 128)
    assert (config.timeout_keep_alive, config.timeout_graceful_shutdown, config.header_timeout) == (
        7,
        11,
        2.5,
    )
    assert config.headers == [("X-Frame-Options", "DENY"), ("x-team", "edge")]


def test_app_dir_makes_the_app_importable(app_dir: Path, recorded_configs: list[Config]) -> None:
    result = invoke(["cliapp:app", "--app-dir", str(app_dir)])
    assert result.exit_code == 0, result.output
    assert sys.path[0] == str(app_dir)
    assert only_config(recorded_configs).load_app() is sys.modules["cliapp"].app


@pytest.mark.parametrize("variable", ["UVICORN_PORT", "DBRIDGE_ASGI_PORT"])
def test_port_from_environment(variable: str, app_dir: Path, recorded_configs: list[Config]) -> None:
    result = invoke(["cliapp:app", "--app-dir", str(app_dir)], env={variable: "9123"})
    assert result.exit_code == 0, result.output
    assert only_config(recorded_configs).port == 9123


def test_dbridge_variable_wins_over_uvicorn_variable(app_dir: Path, recorded_configs: list[Config]) -> None:
    result = invoke(
        ["cliapp:app", "--app-dir", str(app_dir)], env={"UVICORN_PORT": "9001", "DBRIDGE_ASGI_PORT": "9002"}
    )
    assert result.exit_code == 0, result.output
    assert only_config(recorded_configs).port == 9002


def test_command_line_wins_over_environment(app_dir: Path, recorded_configs: list[Config]) -> None:
    result = invoke(
        ["cliapp:app", "--app-dir", str(app_dir), "--port", "9005"], env={"DBRIDGE_ASGI_PORT": "9002"}
    )
    assert result.exit_code == 0, result.output
    assert only_config(recorded_configs).port == 9005


def test_app_and_flags_from_uvicorn_environment(app_dir: Path, recorded_configs: list[Config]) -> None:
    # What a container image written for uvicorn sets.
    env = {
        "UVICORN_APP": "cliapp:app",
        "UVICORN_APP_DIR": str(app_dir),
        "UVICORN_HOST": "0.0.0.0",
        "UVICORN_ACCESS_LOG": "false",
        "UVICORN_LIFESPAN": "on",
        "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": "3",
    }
    result = invoke([], env=env)
    assert result.exit_code == 0, result.output
    config = only_config(recorded_configs)
    assert config.app == "cliapp:app"
    assert config.host == "0.0.0.0"
    assert config.access_log is False
    assert config.lifespan == "on"
    assert config.timeout_graceful_shutdown == 3


def test_invalid_value_from_environment_is_a_usage_error(app_dir: Path) -> None:
    result = invoke(["cliapp:app", "--app-dir", str(app_dir)], env={"UVICORN_LIFESPAN": "sometimes"})
    assert result.exit_code == 2
    assert "Invalid value for '--lifespan'" in result.output


# ---- startup failures: a real process ---------------------------------------------------


@pytest.mark.parametrize(
    "app, message",
    [
        ("cliapp", 'Error loading ASGI app. Import string "cliapp" must be in format "<module>:<attribute>".'),
        ("no_such_module_for_dbridge:app", 'Error loading ASGI app. Could not import module "no_such_module_for_dbridge".'),
        ("cliapp:application", 'Error loading ASGI app. Attribute "application" not found in module "cliapp".'),
    ],
)  # fmt: skip
def test_unimportable_app_logs_uvicorns_message_and_exits_3(app: str, message: str, tmp_path: Path) -> None:
    write_module(tmp_path, "cliapp", ASGI3_APP)
    result = run_cli([app], cwd=tmp_path)
    assert result.returncode == STARTUP_FAILURE, result.stderr
    assert f"ERROR:    {message}" in result.stderr.splitlines()
    # Nothing was started, so nothing claims to have been.
    assert "Started server process" not in result.stderr


def test_app_is_found_in_the_working_directory_by_default(tmp_path: Path) -> None:
    # The console script's sys.path[0] is its bin/ directory: --app-dir "" (the working
    # directory) is what makes `dbridge-asgi main:app` find main.py, as in uvicorn.
    write_module(tmp_path, "cliapp", ASGI3_APP)
    result = run_cli(["cliapp:missing_attr"], cwd=tmp_path)
    assert 'Attribute "missing_attr" not found in module "cliapp"' in result.stderr


def test_app_module_failing_to_import_shows_its_traceback_and_exits_1(tmp_path: Path) -> None:
    # As uvicorn: an error inside the app's own imports is not an "Error loading ASGI app"
    # line but the real traceback, and Python's exit code for an uncaught exception.
    write_module(tmp_path, "brokenapp", "import dependency_missing_for_dbridge\n")
    result = run_cli(["brokenapp:app"], cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "ModuleNotFoundError: No module named 'dependency_missing_for_dbridge'" in result.stderr
    assert "Error loading ASGI app" not in result.stderr


def test_factory_flag_on_a_plain_app_exits_3(tmp_path: Path) -> None:
    write_module(tmp_path, "cliapp", ASGI3_APP)
    result = run_cli(["cliapp:app", "--factory"], cwd=tmp_path)
    assert result.returncode == STARTUP_FAILURE, result.stderr
    assert "ERROR:    Error loading ASGI app factory: " in result.stderr


def test_bad_option_exits_2_like_uvicorn(tmp_path: Path) -> None:
    result = run_cli(["cliapp:app", "--lifespan", "sometimes"], cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '--lifespan': 'sometimes' is not one of 'auto', 'on', 'off'." in result.stderr


def test_every_option_default_is_configs() -> None:
    """One definition: the CLI takes its defaults from Config (as run() and the Gunicorn
    worker do), except where the command line needs another form."""
    import inspect

    import click

    command = importlib.import_module("dbridge_asgi.main").main
    config_defaults = {name: p.default for name, p in inspect.signature(Config.__init__).parameters.items()}
    command_line_forms = {"reload_dirs", "reload_includes", "reload_excludes", "headers", "log_config", "app_dir"}
    checked = 0
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in command_line_forms or param.name == "version":
            continue
        assert param.name in config_defaults, f"--{param.name} is not a Config keyword"
        assert param.default == config_defaults[param.name], param.name
        checked += 1
    assert checked > 40
