"""Blind spots of the contract kit: plugins that broke a rule the kit did not check must fail it.

Each mutant is a subclass of a shipped plugin with one thing broken the way a plugin author
breaks it: a hard-coded key, a key put into the job handle or logged in clear, a host's
Retry-After thrown away, Kling's two keys swapped when signing its token. The suite runs once,
in a child pytest, over every mutant and the unmutated plugins, composed the way ``kling
contract`` composes it, restricted to the behaviour and wire halves. Then ``kling contract``
itself: a run in which no test ran is a failure, and the summary counts replays that rest on
inferred interactions.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest
from kit_children import Report, child_env, failures, run_suites

from kling_core.testing.runner import ProviderTally, summary_rows

MUTANTS = textwrap.dedent(
    '''
    import logging

    import attrs

    from kling_core.http.retry import Decision
    from kling_core.sdk import ExpiringTokenAuth, HeaderAuth, Secret
    from kling_core_plugins.fal import FalProvider
    from kling_core_plugins.kling import KlingProvider
    from kling_core_plugins.kling import jwt as kjwt


    class FalWrongKey(FalProvider):
        """Sends a hard-coded key, never the user's FAL_KEY."""
        def make_auth(self):
            return HeaderAuth(self.name, self.api_hosts, secret=Secret("fal-dev-key-left-in-by-mistake"),
                              header=self.auth_header, scheme=self.auth_scheme)


    class FalKeyInHandle(FalProvider):
        """Puts the credential into JobHandle.data (the job log stores it)."""
        def _handle_from(self, response, request):
            handle = super()._handle_from(response, request)
            return attrs.evolve(handle, data={**handle.data, "auth": self.secrets["api_key"].reveal()})


    class FalLogsKey(FalProvider):
        """Logs the credential on a logger of its own, which the core's redaction never sees."""
        async def status(self, handle):
            logging.getLogger("kling_acme").warning("polling with key %s", self.secrets["api_key"].reveal())
            return await super().status(handle)


    _quiet = logging.getLogger("kling_acme.quiet")
    _quiet.propagate = False
    _quiet.setLevel(logging.ERROR)


    class FalLogsKeyQuietly(FalProvider):
        """The same at DEBUG, on a logger set to ERROR that does not propagate: no handler sees it."""
        async def status(self, handle):
            _quiet.debug("polling with key %s", self.secrets["api_key"].reveal())
            return await super().status(handle)


    class FalIgnoresRetryAfter(FalProvider):
        """Throws away the host's Retry-After and retries after its own short backoff."""
        def _get_decision(self, phase, response):
            d = super()._get_decision(phase, response)
            return Decision(True, None) if d.retry else d


    class KlingSwappedKeys(KlingProvider):
        """Signs the JWT with the access key and puts the secret key in `iss`: every real call 401s."""
        def make_auth(self):
            access, secret = self.secrets["access_key"], self.secrets["secret_key"]
            return ExpiringTokenAuth(
                self.name, self.api_hosts, clock=self.ctx.clock, times=kjwt.TIMES, refusal=kjwt.REFUSAL,
                mint=lambda now: (kjwt.sign(secret.reveal(), access.reveal(), now=now), *kjwt.TIMES.window(now)),
            )


    class KlingUndeclaredToken(KlingProvider):
        """The right token, but no signed_token declaration: the kit cannot see the key in it."""
        signed_token = None
    '''
)
UNMUTATED = ("FalProvider", "KlingProvider")
MUTATED = (
    "FalWrongKey", "FalKeyInHandle", "FalLogsKey", "FalLogsKeyQuietly", "FalIgnoresRetryAfter",
    "KlingSwappedKeys", "KlingUndeclaredToken",
)

@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return run_suites(tmp_path_factory.mktemp("kit-blind-spots"), "test_kit_blind_spots_child.py", MUTANTS,
                      (*UNMUTATED, *MUTATED))


def _wire(failed: Mapping[str, str]) -> dict[str, str]:
    return {n: t for n, t in failed.items() if n.startswith("test_wire_cassette_replays[")}


def test_unmutated_plugins_pass(report: Report) -> None:
    for name in UNMUTATED:
        assert failures(report, name) == {}, name
        assert sum(n.startswith("test_wire_cassette_replays[") for n in report[f"Test{name}"]) > 10, name


def test_a_hard_coded_key_fails_the_wire_half(report: Report) -> None:
    wire = _wire(failures(report, "FalWrongKey"))
    assert "test_wire_cassette_replays[success-o1-pro]" in wire
    text = wire["test_wire_cassette_replays[success-o1-pro]"]
    assert "step 1 (submit)" in text
    assert "header authorization: the credential sent is not the test's api_key" in text
    assert "fal-dev-key-left-in-by-mistake" not in text and "sk-CANARY" not in text


def test_swapped_kling_keys_fail_the_token_check(report: Report) -> None:
    wire = _wire(failures(report, "KlingSwappedKeys"))
    assert wire, "the kit passed a token signed with the wrong key"
    assert all("the token's signature does not verify with the test's secret_key" in t for t in wire.values())
    assert not any("sk-CANARY" in t for t in wire.values())


def test_a_signed_token_needs_its_declaration(report: Report) -> None:
    wire = _wire(failures(report, "KlingUndeclaredToken"))
    assert wire
    assert all("declare signed_token on the provider class" in t for t in wire.values())


def test_a_key_in_the_job_handle_is_caught(report: Report) -> None:
    failed = failures(report, "FalKeyInHandle")
    text = failed["test_wire_cassette_replays[success-o1-pro]"]
    assert "step 1 (submit): the credential appears in the returned JobHandle" in text
    assert "sk-CANARY" not in text
    assert "test_behaviour_job_succeeds" in failed  # the behaviour half judges the same replay


@pytest.mark.parametrize("mutant", ["FalLogsKey", "FalLogsKeyQuietly"])
def test_a_key_logged_in_clear_is_caught(report: Report, mutant: str) -> None:
    failed = failures(report, mutant)
    text = failed["test_wire_cassette_replays[success-o1-pro]"]
    logger = "kling_acme" if mutant == "FalLogsKey" else "kling_acme.quiet"
    assert f"step 2 (status): the credential appears in a log record (logger {logger!r}" in text
    assert "sk-CANARY" not in text


def test_an_ignored_retry_after_is_caught(report: Report) -> None:
    failed = _wire(failures(report, "FalIgnoresRetryAfter"))
    text = failed["test_wire_cassette_replays[status-429-retry-after]"]
    assert "step 2 (status), interaction 2 of 2" in text
    assert "after interaction 1 answered Retry-After: 5" in text
    # only the scenarios where the host asks for a wait and a retry follows
    assert "test_wire_cassette_replays[success-o1-pro]" not in failed


def test_each_mutant_fails_only_some_tests(report: Report) -> None:
    for name in MUTATED:
        results = report[f"Test{name}"]
        assert len(results) == len(report[f"Test{'Kling' if name.startswith('Kling') else 'Fal'}Provider"]), name
        assert 0 < len(failures(report, name)) < len(results), name


# --- kling contract -------------------------------------------------------------------------


def _kling(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kling_core.cli import main; main()", *args],
        capture_output=True, text=True, timeout=300, cwd=cwd, env=child_env(), check=False,
    )


def test_contract_with_no_test_run_fails(tmp_path: Path) -> None:
    proc = _kling("contract", "fal", "-k", "no_such_test_name", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: no contract test ran for any provider (-k 'no_such_test_name' matched none of its tests)" in proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("fal "))
    assert row.split()[-3:] == ["no", "tests", "ran"]
    assert "Traceback" not in proc.stderr


def test_a_selection_some_providers_have_no_test_for_still_passes(tmp_path: Path) -> None:
    proc = _kling("contract", "fal", "mock", "-k", "wire", cwd=tmp_path)  # the mock has no wire half
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "note: no contract test ran for mock (-k 'wire' matched none of its tests)" in proc.stderr


def test_contract_summary_counts_inferred_replays(tmp_path: Path) -> None:
    # status-429-retry-after holds an interaction marked inferred; success-o1-pro does not.
    proc = _kling("contract", "fal", "-k", "status-429-retry-after or success-o1-pro", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("provider"))
    assert lines[header + 1].split() == ["fal", "-", "2", "passed", "(1", "inferred)", "-", "ok"]
    assert any(line.startswith("(N inferred): wire replays of cassettes") for line in lines)


def test_summary_rows_show_inferred_and_idle_providers() -> None:
    ran = ProviderTally("ran", inferred=3)
    ran.counts["wire"].update(passed=4, failed=1)
    idle = ProviderTally("idle")
    idle.counts["behaviour"] = Counter(skipped=2)
    rows = summary_rows([ran, idle])
    assert rows[0] == ["ran", "-", "4 passed, 1 failed (3 inferred)", "-", "FAIL"]
    assert rows[1] == ["idle", "2 skipped", "-", "-", "no tests ran"]


# -- credential checks a valid plugin must pass ----------------------------------------------

KIT_CREDS = {"access_key": "canary-ak-123456", "secret_key": "canary-sk-abcdef-0123456789abcdef0123"}  # HS256: 32+ bytes
KIT_SIGNED = {"type": "jwt", "algorithm": "HS256", "key": "secret_key", "claims": {"iss": "access_key"}}


def test_a_raw_key_header_beside_a_declared_signed_token_passes() -> None:
    import httpx
    import jwt

    from kling_core.testing.cassettes import RecordedRequest
    from kling_core.testing.credential_check import credential_problems

    token = jwt.encode({"iss": KIT_CREDS["access_key"]}, KIT_CREDS["secret_key"], algorithm="HS256")
    recorded = RecordedRequest("POST", "https://h.example/v1",
                               headers={"Authorization": "Bearer <SECRET>", "X-Api-Key": "<SECRET>"})
    sent = httpx.Request("POST", "https://h.example/v1",
                         headers={"Authorization": f"Bearer {token}", "X-Api-Key": KIT_CREDS["access_key"]})
    assert credential_problems(recorded, sent, KIT_CREDS, KIT_SIGNED) == []
    wrong = httpx.Request("POST", "https://h.example/v1",
                          headers={"Authorization": f"Bearer {token}", "X-Api-Key": "hard-coded-key-0000"})
    assert credential_problems(recorded, wrong, KIT_CREDS, KIT_SIGNED)  # a wrong raw key still fails


def test_a_session_cookie_the_host_handed_out_is_not_taken_for_a_wrong_key() -> None:
    import httpx

    from kling_core.testing.cassettes import RecordedRequest, RecordedResponse
    from kling_core.testing.credential_check import credential_problems
    from kling_core.testing.replay import _answer_strings

    login = RecordedResponse(status=200, headers={"Set-Cookie": "session=tok999; Path=/; HttpOnly"})
    recorded = RecordedRequest("GET", "https://h.example/v1", headers={"Cookie": "session=<SECRET>"})
    sent = httpx.Request("GET", "https://h.example/v1", headers={"Cookie": "session=tok999"})
    assert credential_problems(recorded, sent, KIT_CREDS, None, _answer_strings(login)) == []
    made_up = httpx.Request("GET", "https://h.example/v1", headers={"Cookie": "session=tok000"})
    assert credential_problems(recorded, made_up, KIT_CREDS, None, _answer_strings(login))
