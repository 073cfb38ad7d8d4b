"""The public surface is named, resolves, and is the only thing plugins import."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import kling_core
import kling_core.sdk

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = {"kling_core", "kling_core.sdk"}
# Plugin *tests* may also use the shipped contract kit.
PUBLIC_FOR_TESTS = PUBLIC_MODULES | {"kling_core.testing"}


def test_top_level_names_resolve() -> None:
    for name in kling_core.__all__:
        assert getattr(kling_core, name) is not None, name
    assert callable(kling_core.edit) and callable(kling_core.aedit)
    assert sorted(kling_core.__all__) == sorted(kling_core._MODULE_OF)  # the lazy map and __all__ agree


def test_unknown_top_level_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        kling_core.nosuch  # noqa: B018


def test_sdk_names_resolve() -> None:
    for name in kling_core.sdk.__all__:
        assert hasattr(kling_core.sdk, name), name


def _kling_imports(path: Path) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """(line, module, names) for each import of a kling_core module in a file."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "kling_core":
                    yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "kling_core":
            yield node.lineno, str(node.module), tuple(a.name for a in node.names)


def import_problems(path: Path, allowed: set[str], root: Path = ROOT) -> list[str]:
    """Imports of internal kling_core modules, or of names a public module does not export."""
    out = []
    for line, module, names in _kling_imports(path):
        if module not in allowed:
            out.append(f"{path.relative_to(root)}:{line}: imports internal module {module}")
            continue
        public = set(importlib.import_module(module).__dict__.get("__all__", ()))
        for name in names:
            if name not in public:
                out.append(f"{path.relative_to(root)}:{line}: {name} is not a public name of {module}")
    return out


def plugin_sources() -> list[Path]:
    roots = [ROOT / "plugins" / "kling_core_plugins", ROOT / "examples" / "kling-example-provider" / "kling_example"]
    return sorted(p for root in roots for p in root.rglob("*.py"))


@pytest.mark.parametrize("path", plugin_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_public_names(path: Path) -> None:
    assert not import_problems(path, PUBLIC_MODULES)


def test_plugin_tests_import_only_public_names() -> None:
    tests = [*(ROOT / "contract_tests").glob("*.py"), *(ROOT / "examples" / "kling-example-provider" / "tests").glob("*.py")]
    problems = [p for path in tests for p in import_problems(path, PUBLIC_FOR_TESTS)]
    assert not problems, "\n".join(problems)


def test_the_boundary_check_catches_an_internal_import(tmp_path: Path) -> None:
    bad = ROOT / "tests" / "_boundary_probe.py"
    bad.write_text("from kling_core.http.base import HttpProvider\nfrom kling_core.sdk import NotAName\n")
    try:
        problems = import_problems(bad, PUBLIC_MODULES)
    finally:
        bad.unlink()
    assert len(problems) == 2 and "internal module kling_core.http.base" in problems[0]
    assert re.search(r"NotAName is not a public name", problems[1])


IO_METHODS = ("_send", "send_submit", "send_get", "submit", "status", "fetch_result", "cancel", "reconcile", "dry_run")


def test_no_first_party_http_plugin_overrides_the_io() -> None:
    from kling_core.plugins import PluginHost
    from kling_core.sdk import HttpProvider

    host = PluginHost(environ={})
    http = [cls for cls in host.providers.values() if issubclass(cls, HttpProvider)]
    assert {cls.name for cls in http} >= {"fal", "segmind", "unifically", "kling"}
    overridden = [f"{cls.__name__}.{name}" for cls in http for name in IO_METHODS
                  if getattr(cls, name) is not getattr(HttpProvider, name)]
    assert not overridden, f"plugins must declare data and pure parsers, not I/O: {overridden}"
