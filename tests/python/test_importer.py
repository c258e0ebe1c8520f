"""import_from_string resolves "module:attribute" as uvicorn's does, with uvicorn's error messages."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbridge_asgi.importer import ImportFromStringError, import_from_string
from shell_support import preserved_process_state, write_module


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path for the test's own modules."""
    with preserved_process_state(tmp_path):
        sys.path.insert(0, str(tmp_path))
        yield tmp_path


def test_resolves_module_attribute(app_dir: Path) -> None:
    write_module(app_dir, "imp_plain", "app = object()\n")
    import imp_plain

    assert import_from_string("imp_plain:app") is imp_plain.app


def test_resolves_dotted_attribute_path(app_dir: Path) -> None:
    write_module(
        app_dir,
        "imp_dotted",
        """
        class Holder:
            class Inner:
                app = "the app"
        """,
    )
    assert import_from_string("imp_dotted:Holder.Inner.app") == "the app"


def test_resolves_module_inside_package() -> None:
    import json.decoder

    assert import_from_string("json.decoder:JSONDecoder") is json.decoder.JSONDecoder


def test_returns_non_string_unchanged() -> None:
    app = object()
    assert import_from_string(app) is app


@pytest.mark.parametrize("import_str", ["main", "main:", ":app", ""])
def test_rejects_string_without_module_and_attribute(import_str: str) -> None:
    with pytest.raises(ImportFromStringError) as info:
        import_from_string(import_str)
    assert str(info.value) == f'Import string "{import_str}" must be in format "<module>:<attribute>".'


def test_reports_missing_module() -> None:
    with pytest.raises(ImportFromStringError) as info:
        import_from_string("no_such_module_for_dbridge:app")
    assert str(info.value) == 'Could not import module "no_such_module_for_dbridge".'


def test_reports_missing_attribute_with_its_full_dotted_path(app_dir: Path) -> None:
    write_module(app_dir, "imp_attrs", "class api:\n    pass\n")
    with pytest.raises(ImportFromStringError) as info:
        import_from_string("imp_attrs:api.app")
    assert str(info.value) == 'Attribute "api.app" not found in module "imp_attrs".'


def test_module_importing_something_missing_raises_that_error_unchanged(app_dir: Path) -> None:
    # The module exists; what it imports does not. uvicorn lets the real error through
    # so the traceback names the missing dependency instead of blaming APP.
    write_module(app_dir, "imp_broken_dep", "import dependency_missing_for_dbridge\napp = 1\n")
    with pytest.raises(ModuleNotFoundError) as info:
        import_from_string("imp_broken_dep:app")
    assert not isinstance(info.value, ImportFromStringError)
    assert info.value.name == "dependency_missing_for_dbridge"


def test_missing_submodule_of_missing_package_is_not_reported_as_could_not_import(app_dir: Path) -> None:
    # "pkg.sub" where "pkg" itself is missing: ModuleNotFoundError names "pkg", not the
    # requested module, so uvicorn re-raises it rather than claiming "pkg.sub" is missing.
    with pytest.raises(ModuleNotFoundError) as info:
        import_from_string("no_such_package_for_dbridge.sub:app")
    assert not isinstance(info.value, ImportFromStringError)
    assert info.value.name == "no_such_package_for_dbridge"


def test_exception_raised_while_importing_module_propagates(app_dir: Path) -> None:
    write_module(app_dir, "imp_raises", "raise RuntimeError('configuration missing')\n")
    with pytest.raises(RuntimeError, match="configuration missing"):
        import_from_string("imp_raises:app")
