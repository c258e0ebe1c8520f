"""Resolves "module:attribute" strings to objects, the way `uvicorn main:app` does.

The error messages are uvicorn's, word for word: people and scripts grep for them.
"""

from __future__ import annotations

import importlib
from typing import Any


class ImportFromStringError(Exception):
    """The import string is malformed, or names a module or attribute that does not exist."""


def import_from_string(import_str: Any) -> Any:
    """Returns the object `import_str` names; anything that is not a str is returned as it is.

    `import_str` is "<module>:<attribute>", the attribute possibly dotted ("main:api.app").
    A module that exists but fails to import because *it* imports something missing raises
    that ModuleNotFoundError unchanged, as uvicorn does: the traceback names the real culprit.
    """
    if not isinstance(import_str, str):
        return import_str

    module_name, _, attribute_path = import_str.partition(":")
    if not module_name or not attribute_path:
        raise ImportFromStringError(f'Import string "{import_str}" must be in format "<module>:<attribute>".')

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise exc from None
        raise ImportFromStringError(f'Could not import module "{module_name}".') from None

    instance: Any = module
    try:
        for attribute in attribute_path.split("."):
            instance = getattr(instance, attribute)
    except AttributeError:
        raise ImportFromStringError(
            f'Attribute "{attribute_path}" not found in module "{module_name}".'
        ) from None
    return instance
