"""The README's provider tables stay equal to the providers' capability data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kling_core.capability_table import (
    END,
    START,
    current_block,
    first_party,
    installed_first_party,
    render,
    replace_block,
)
from kling_core.provider import Provider

README = Path(__file__).resolve().parents[1] / "README.md"
PROVIDERS_DOC = README.parent / "docs" / "providers.md"


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def test_generated_table_equals_the_capability_data() -> None:
    block = current_block(_readme())
    assert block is not None, f"README.md has no {START} … {END} block"
    expected = render(installed_first_party())
    assert block == expected, "README's capability table is stale: run `python -m kling_core.capability_table README.md`"


def test_wire_table_has_a_column_per_first_party_provider() -> None:
    # docs/providers.md's hand-written "how each host spells it" table: a column per first-party provider.
    text = PROVIDERS_DOC.read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| Canonical field | `mock`"))
    columns = re.findall(r"`([^`]+)`", header)
    assert sorted(columns) == sorted(cls.name for cls in installed_first_party())


def test_the_table_changes_when_the_data_does() -> None:
    # A probe that the comparison can fail: another price or limit renders another table.
    import attrs

    from kling_core.contract.capabilities import Price

    mock = next(cls for cls in installed_first_party() if cls.name == "mock")
    caps = attrs.evolve(mock.capabilities, max_in_flight=7, prices=(
        Price(model="kling-o1", quality="std", source="test", as_of="2026-12-01", usd_per_second=0.5),))
    changed: type[Provider] = type("Changed", (mock,), {"capabilities": caps})
    assert render([changed]) != render([mock])
    assert "$0.5/s" in render([changed]) and "| 7 |" in render([changed])


def test_replace_block_round_trip() -> None:
    text = f"before\n{START}\nold\n{END}\nafter\n"
    assert replace_block(text, f"{START}\nnew\n{END}") == f"before\n{START}\nnew\n{END}\nafter\n"
    with pytest.raises(ValueError):
        replace_block("no markers", "x")


def test_only_the_first_party_distribution_is_documented() -> None:
    class A(Provider):  # type: ignore[misc]
        name = "zeta"

    class B(Provider):  # type: ignore[misc]
        name = "mock"

    rows = [("zeta", A, "kling-core"), ("mock", B, "kling-core"), ("other", A, "third-party"), ("alias", B, "kling-core")]
    assert first_party(rows) == [B, A]
