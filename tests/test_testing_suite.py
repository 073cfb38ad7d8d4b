"""The suite's layout: compositions picked by ``is_http``, the preflight the client shares,
required outcomes, and failure messages that name the table entry behind an error."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import kling_core_plugins.fal
import pytest
from kling_core_plugins.fal import FalProvider
from kling_core_plugins.mock import MockProvider

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.contract.models import EditRequest
from kling_core.errors import ValidationError
from kling_core.preflight import check_request
from kling_core.testing import (
    HttpProviderContractTests,
    LocalProviderContractTests,
    ProviderContractTests,
)
from kling_core.testing.replay import ContractFailure
from kling_core.testing.suite import default_cassette_dir
from kling_core.testing.tables import describe_entry

COMPOSITIONS = (HttpProviderContractTests, LocalProviderContractTests)


def test_provider_contract_tests_becomes_the_composition_the_provider_needs() -> None:
    class TestHttp(ProviderContractTests):
        provider_name = "fal"
        provider_cls = FalProvider

    class TestLocal(ProviderContractTests):
        provider_name = "mock"

    assert issubclass(TestHttp, HttpProviderContractTests) and not issubclass(TestHttp, LocalProviderContractTests)
    assert issubclass(TestLocal, LocalProviderContractTests) and not issubclass(TestLocal, HttpProviderContractTests)

    class _Base(ProviderContractTests):  # names no provider: stays undecided
        property_examples = 5

    class TestLater(_Base):
        provider_name = "fal"
        provider_cls = FalProvider

    assert not issubclass(_Base, COMPOSITIONS)
    assert issubclass(TestLater, HttpProviderContractTests) and TestLater.property_examples == 5

    with pytest.raises(TypeError, match="needs LocalProviderContractTests; subclass that directly"):

        class TestSwitched(TestHttp):
            provider_name = "mock"
            provider_cls = MockProvider


def test_each_composition_holds_only_its_halves() -> None:
    def halves(cls: type) -> set[str]:
        names = [n for n in dir(cls) if n.startswith("test_")]
        assert all(n.split("_")[1] in ("behaviour", "wire", "property") for n in names), names
        return {n.split("_")[1] for n in names}

    assert halves(HttpProviderContractTests) == {"behaviour", "wire", "property"}
    assert halves(LocalProviderContractTests) == {"behaviour", "property"}
    assert "test_behaviour_job_fails" in dir(HttpProviderContractTests)
    assert "test_behaviour_completed_with_error_fails" in dir(HttpProviderContractTests)
    assert "test_property_parsers_survive_arbitrary_json" not in dir(LocalProviderContractTests)


def test_cassettes_default_to_the_plugins_own_folder() -> None:
    # Several plugins share the kling_core_plugins package: each has its own cassettes/.
    assert default_cassette_dir(FalProvider) == Path(kling_core_plugins.fal.__file__).parent / "cassettes"


@pytest.mark.parametrize(
    "request_doc",
    [
        {"prompt": "match @Image2", "video": "https://media.example.com/v.mp4"},  # dangling reference
        {"prompt": "x", "video": "/no/such/clip.mp4"},  # missing local file
        {"prompt": "x", "video": "https://media.example.com/v.mp4", "aspect_ratio": "16:9"},  # unsupported
    ],
)
def test_the_client_check_and_the_suite_refuse_alike(request_doc: dict[str, str]) -> None:
    client = AsyncEditClient(provider="fal", config=config_from_document({}), environ={"FAL_KEY": "k"})
    request = EditRequest(**request_doc)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as by_client:
        client.check(request)
    with pytest.raises(ValidationError) as by_suite:
        check_request(client.provider("fal"), request)
    assert type(by_client.value) is type(by_suite.value) and str(by_client.value) == str(by_suite.value)
    asyncio.run(client.aclose())


def test_table_entry_is_named_with_or_without_describe() -> None:
    old = SimpleNamespace(by_status_code={(400, "a"): 1}, by_code={"b": 1}, by_status={422: 1})
    assert describe_entry(old, 400, "a") == "error_table.by_status_code[(400, 'a')]"
    assert describe_entry(old, 400, "b") == "error_table.by_code['b']"
    assert describe_entry(old, 422, None) == "error_table.by_status[422]"
    assert describe_entry(old, 418, "zz") == "generic status 418"
    new = SimpleNamespace(describe=lambda status, code: f"described {status} {code}")
    assert describe_entry(new, 400, "x") == "described 400 x"


def test_completed_with_error_is_required_only_of_a_host_that_has_that_state(tmp_path: Path) -> None:
    from kling_core_plugins.fal import FalProvider

    source = Path(sys.modules[FalProvider.__module__].__file__ or "").parent / "cassettes"
    for f in source.glob("*.json"):
        doc = json.loads(f.read_text("utf-8"))
        doc.pop("covers", None)
        (tmp_path / f.name).write_text(json.dumps(doc), "utf-8")

    class Fal(HttpProviderContractTests):
        provider_name = "fal"
        provider_cls = FalProvider
        cassette_dir = tmp_path

    # fal's spec says a "completed" status can carry an error: a cassette must show it.
    assert FalProvider.spec.status.completed_error
    with pytest.raises(ContractFailure, match=r'completed_with_error: .*"covers": \["completed_with_error"\]'):
        Fal().test_behaviour_documented_outcomes_covered()

    kling_example = pytest.importorskip("kling_example", reason="pip install -e examples/kling-example-provider")

    class Example(HttpProviderContractTests):
        provider_name = "example"
        provider_cls = kling_example.ExampleProvider

    # The example host has no such state (its spec declares no completed_error paths).
    assert not kling_example.ExampleProvider.spec.status.completed_error
    assert "completed_with_error" not in Example().required()
    Example().test_behaviour_documented_outcomes_covered()
