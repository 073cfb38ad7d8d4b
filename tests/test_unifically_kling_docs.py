"""docs/providers.md must say what the provider classes say (models, keys, cancel, webhook...)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kling_core.plugins import PluginHost
from kling_core.provider import Provider

DOC = Path(__file__).resolve().parents[1] / "docs" / "providers.md"
PROVIDERS = ("mock", "fal", "segmind", "unifically", "kling", "replicate", "wavespeed")


def table() -> dict[str, dict[str, str]]:
    """Row label -> provider -> cell, from the field-by-field table."""
    lines = [line for line in DOC.read_text("utf-8").splitlines() if line.startswith("| ")]  # no |---| rows
    header = [c.strip().strip("`") for c in lines[0].strip("|").split("|")]
    assert header[1:] == list(PROVIDERS), header
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(header):
            continue  # another table further down
        label = cells[0].split("**")[1] if cells[0].startswith("**") else cells[0]
        label = label.strip("`* ").split("`")[0]
        rows[label] = dict(zip(PROVIDERS, cells[1:], strict=True))
    return rows


@pytest.fixture(scope="module")
def classes() -> dict[str, type[Provider]]:
    host = PluginHost(environ={"KLING_PLUGINS": ",".join(PROVIDERS)})
    return {name: host.provider_class(name) for name in PROVIDERS}


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, str]]:
    return table()


@pytest.mark.parametrize("name", PROVIDERS)
def test_models(name: str, classes: dict[str, type[Provider]], rows: dict[str, dict[str, str]]) -> None:
    named = set(re.findall(r"kling-o[13]", rows["Models"][name]))
    assert named == set(classes[name].capabilities.model_names)


@pytest.mark.parametrize("name", PROVIDERS)
def test_credentials(name: str, classes: dict[str, type[Provider]], rows: dict[str, dict[str, str]]) -> None:
    named = set(re.findall(r"[A-Z][A-Z0-9_]{3,}", rows["Credentials"][name]))
    assert named == {spec.env for spec in classes[name].credentials}


@pytest.mark.parametrize("name", PROVIDERS)
def test_yes_no_capabilities(name: str, classes: dict[str, type[Provider]], rows: dict[str, dict[str, str]]) -> None:
    caps = classes[name].capabilities
    assert rows["Cancel"][name].startswith("yes") is caps.can_cancel
    assert rows["Dry run"][name].startswith("yes") is caps.supports_dry_run
    assert rows["webhook_url"][name].startswith("refused") is (not caps.accepts_webhook)
    assert ("URLs only" in rows["Local files"][name]) is (not caps.accepts_local_files)


@pytest.mark.parametrize("name", PROVIDERS)
def test_edit_modes_aspect_ratio_duration(
    name: str, classes: dict[str, type[Provider]], rows: dict[str, dict[str, str]]
) -> None:
    models = classes[name].capabilities.models
    if any(m.accepts_aspect_ratio for m in models):
        assert "refused" not in rows["aspect_ratio"][name]
    else:
        assert rows["aspect_ratio"][name].startswith("refused")
    if any(m.accepts_duration for m in models):
        assert "refused" not in rows["duration"][name]
    else:
        assert rows["duration"][name].startswith("refused")
    if not any(m.accepts_elements for m in models):
        assert "refused" in rows["elements"][name]


@pytest.mark.parametrize("name", [n for n in PROVIDERS if n != "mock"])
def test_base_urls(name: str, classes: dict[str, type[Provider]], rows: dict[str, dict[str, str]]) -> None:
    assert f"`{classes[name].default_base_url}`" in rows["Base URL"][name]  # type: ignore[attr-defined]


# --- the error tables under "## Unifically" and "## Kling (official API)" ---------------


def section(title: str) -> list[str]:
    """The lines of one ``## title`` section."""
    lines = DOC.read_text("utf-8").splitlines()
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start + 1 : end]


def error_rows(title: str) -> list[list[str]]:
    """Rows of the 4-column error table in a section: cells stripped of backticks and notes."""
    rows = []
    for line in section(title):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and line.strip().startswith("|") and not set(cells[0]) <= {"-"}:
            rows.append(cells)
    assert rows[0][-1] == "retryable", rows[0]
    return rows[1:]


def _class_name(cell: str) -> str:
    return cell.split("`")[1]


def test_kling_error_table_matches_the_docs() -> None:
    from kling_core_plugins.kling import wire

    documented: set[str] = set()
    for codes, _http, error, retryable in error_rows("Kling (official API)"):
        for code in re.findall(r"\d{4}", codes):
            documented.add(code)
            rule = wire.ERRORS.by_code[code]
            assert rule.error.__name__ == _class_name(error), code
            assert rule.retryable is (retryable == "yes"), code
    assert documented == set(wire.ERRORS.by_code)


def test_unifically_error_table_matches_the_docs() -> None:
    from kling_core_plugins.unifically import wire

    rows = error_rows("Unifically")
    assert rows
    for http, code_cell, error, retryable in rows:
        code = code_cell.split("`")[1] if "`" in code_cell else None
        rule = wire.ERRORS.lookup(int(http), code)
        assert rule.error.__name__ == _class_name(error), (http, code)
        assert rule.retryable is (retryable == "yes"), (http, code)
