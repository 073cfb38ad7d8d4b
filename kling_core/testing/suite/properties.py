"""The property half: hypothesis-generated requests and host answers.

``RequestPropertyTests`` (every provider): requests outside the capabilities are refused
before any I/O. ``HttpPropertyTests`` adds the HTTP plugin's builders and parsers: submit
bodies against the host's documented request schema, and generated or arbitrary answers into
the parsers, where only ``ProtocolError`` may come out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from kling_core.contract.models import EditRequest
from kling_core.errors import ValidationError
from kling_core.testing.doubles import CallLog, build_provider, canary_credentials, refusing_transport
from kling_core.testing.parsers import NOT_JSON_BODIES, RawBody, feed_parser
from kling_core.testing.replay import ContractFailure
from kling_core.testing.suite.base import SuiteBase, submit_once


class RequestPropertyTests(SuiteBase):
    """``test_property_*`` for every provider."""

    property_examples: ClassVar[int] = 40
    # True: the same examples every run (hypothesis derandomize), e.g. for suites testing suites.
    property_derandomize: ClassVar[bool] = False

    def kling_settings(self) -> Callable[[Callable[..., None]], Callable[..., None]]:
        from hypothesis import HealthCheck, settings

        extra: dict[str, Any] = {}
        if self.property_derandomize:
            # Otherwise inherit the active profile: hypothesis' own "ci" profile (picked when CI
            # is set) already derandomizes.
            extra["derandomize"] = True
        return settings(
            max_examples=self.property_examples, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
            **extra,
        )

    def test_property_unservable_requests_refused(self, tmp_path: Path) -> None:
        from hypothesis import given

        from kling_core.testing.strategies import unservable_requests

        @self.kling_settings()
        @given(case=unservable_requests(self.kling_provider_cls().capabilities))
        def check(case: tuple[str, EditRequest]) -> None:
            field_name, req = case
            log = CallLog()
            try:
                asyncio.run(submit_once(self.kling_provider(tmp_path, log), req))
            except ValidationError:
                pass
            else:
                raise ContractFailure(f"a request with an unsupported {field_name} was accepted: {req!r}")
            assert len(log) == 0, f"{len(log)} HTTP request(s) sent before refusing an unsupported {field_name}"

        check()


class HttpPropertyTests(RequestPropertyTests):
    """``test_property_*`` for HTTP providers' builders and parsers."""

    def test_property_submit_body_matches_host_schema(self, tmp_path: Path) -> None:
        import jsonschema
        from hypothesis import assume, given

        from kling_core.testing.schemas import provider_schema
        from kling_core.testing.strategies import servable_requests

        cls = self.kling_provider_cls()
        env = canary_credentials(cls)
        provider = build_provider(cls, environ=env, transport=refusing_transport(CallLog()), work_dir=tmp_path)
        build_submit = getattr(provider, "build_submit", None)
        request_schema = getattr(provider, "request_schema", None)
        if build_submit is None or request_schema is None:
            pytest.skip("provider has no build_submit/request_schema")
        seen_schema: list[str] = []

        @self.kling_settings()
        @given(req=servable_requests(cls.capabilities))
        def check(req: EditRequest) -> None:
            assume(not provider.check(req))
            name = request_schema(req)
            built = build_submit(req)
            assert isinstance(built, httpx.Request), f"build_submit returned {built!r}, not an httpx.Request"
            for v in env.values():
                assert v not in str(built.url), "the credential appears in the submit URL"
                assert v.encode() not in built.content, "the credential appears in the submit body"
            if name is None:
                return
            seen_schema.append(name)
            body = json.loads(built.content)
            problems = sorted(jsonschema.Draft202012Validator(provider_schema(name, cls)).iter_errors(body), key=str)
            if problems:
                detail = "\n".join(f"  - {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in problems)
                raise ContractFailure(f"the submit body breaks {name} for request {req!r}:\n{detail}")

        check()
        if not seen_schema:
            pytest.skip("the provider names no documented request schema (request_schema returns None)")

    def test_property_parsers_take_documented_responses(self, tmp_path: Path) -> None:
        from hypothesis import given
        from hypothesis import strategies as st

        from kling_core.testing.schema_strategy import from_schema
        from kling_core.testing.schemas import provider_schema

        cls = self.kling_provider_cls()
        schemas: Mapping[str, str] = getattr(cls, "response_schemas", {}) or {}
        if not schemas:
            pytest.skip("the provider declares no response_schemas")
        provider = self.kling_provider(tmp_path)
        strategies = {kind: from_schema(provider_schema(name, cls)) for kind, name in sorted(schemas.items())}

        @self.kling_settings()
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            kind = data.draw(st.sampled_from(sorted(strategies)), label="kind")
            doc = data.draw(strategies[kind], label=f"{kind} body")
            feed_parser(provider, kind, doc, data)

        check()

    def test_property_parsers_survive_arbitrary_json(self, tmp_path: Path) -> None:
        from hypothesis import given
        from hypothesis import strategies as st

        from kling_core.testing.schema_strategy import arbitrary_json

        cls = self.kling_provider_cls()
        provider = self.kling_provider(tmp_path)
        kinds = sorted({"submit", "status", *getattr(cls, "response_schemas", {})})

        @self.kling_settings()
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            kind = data.draw(st.sampled_from(kinds), label="kind")
            # JSON of any shape, or a body that is not JSON at all (an HTML error page, a cut-off answer)
            doc = data.draw(arbitrary_json() | st.builds(RawBody, st.sampled_from(NOT_JSON_BODIES)), label="body")
            feed_parser(provider, kind, doc, data)

        check()
