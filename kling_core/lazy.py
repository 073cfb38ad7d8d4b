"""Package attributes imported on first use (a module ``__getattr__``, PEP 562).

A package lists which module defines each public name; importing the package stays cheap
(``kling --help`` and the mock path load no HTTP machinery), and a name is imported the first
time it is read, then kept in the package's namespace.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def exporter(package: str, module_of: Mapping[str, str | tuple[str, str]]) -> Callable[[str], Any]:
    """The body of ``package``'s ``__getattr__``: ``module_of`` maps a name to its module, or to
    ``(module, attribute)`` for a name exported under another name than the module's."""

    def load(name: str) -> Any:
        where = module_of.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = (where, name) if isinstance(where, str) else where
        value = getattr(importlib.import_module(module), attribute)
        vars(sys.modules[package])[name] = value
        return value

    return load
