"""``WireTests``: every cassette replayed strictly, and scanned for secrets.

The requests the plugin sends must match the recorded ones (method, URL, query, recorded
headers, JSON body) and the recorded responses must parse to each step's ``expect``. With
``--kling-record`` the replayable scenarios are first re-recorded against the live host.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kling_core.provider import Provider
from kling_core.testing.cassettes import Cassette, cassette_files, load_cassette
from kling_core.testing.replay import ContractFailure, replay
from kling_core.testing.secrets import assert_no_secrets
from kling_core.testing.suite.base import CassetteSuite


def record(cls: type[Provider], cassette: Cassette) -> None:
    """Re-record one scenario live and rewrite its file (skips what cannot be reproduced)."""
    from kling_core.testing.record import record_scenario, write_cassette

    if cassette.outcome() not in ("succeeded", "cancel", "cancelled"):
        pytest.skip(f"scenario {cassette.scenario!r} ends in {cassette.outcome()}: not reproducible live; kept as is")
    if cassette.steps[0].op != "submit":
        pytest.skip(f"scenario {cassette.scenario!r} starts from {cassette.steps[0].op}, not a submit: kept as is")
    env = {spec.env: os.environ.get(spec.env, "") for spec in cls.credentials}
    missing = [k for k, v in env.items() if not v.strip()]
    if missing:
        pytest.skip(f"recording needs {', '.join(missing)} set to a real key")
    doc = asyncio.run(
        record_scenario(
            cls, scenario=cassette.scenario, request=cassette.request, environ=env,
            description=cassette.description, options=cassette.options, base_url=cassette.base_url,
            cancel=any(s.op == "cancel" for s in cassette.steps),
        )
    )
    if cassette.covers:  # a declaration about the scenario, not something a recording shows
        doc["covers"] = list(cassette.covers)
    write_cassette(doc, cassette.path, secrets=list(env.values()))


class WireTests(CassetteSuite):
    """``test_wire_*``: the plugin's requests and parsing, cassette by cassette."""

    def test_wire_has_cassettes(self) -> None:
        d = self.kling_cassette_dir()
        if not cassette_files(d):
            raise ContractFailure(f"no cassettes found in {d} (one JSON file per scenario)")

    def test_wire_cassette_replays(self, kling_cassette_path: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        cls = self.kling_provider_cls()
        cassette = load_cassette(kling_cassette_path)
        if request.config.getoption("kling_record", False):
            record(cls, cassette)
            cassette = load_cassette(kling_cassette_path)
        replay(cls, cassette, work_dir=tmp_path).check()

    def test_wire_cassettes_hold_no_secrets(self) -> None:
        files = cassette_files(self.kling_cassette_dir())
        if not files:
            pytest.skip("no cassettes")
        assert_no_secrets(files)
