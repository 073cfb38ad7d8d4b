"""`kling contract`: runs the suite for installed providers, summarises per half, exit codes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter

import pytest

from kling_core.cli import main
from kling_core.testing.runner import ProviderTally, summary_rows


def _run_main(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0)


def test_unknown_provider_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_main(["contract", "no-such-provider"]) == 2
    err = capsys.readouterr().err
    assert "unknown provider 'no-such-provider'" in err and "Traceback" not in err


def test_without_the_test_extra_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "respx" else real(name, *a))
    assert _run_main(["contract", "mock"]) == 2
    err = capsys.readouterr().err
    assert "needs respx: install kling-core[test]" in err


def test_summary_rows() -> None:
    ok = ProviderTally("ok-provider")
    ok.counts["behaviour"].update(passed=3, skipped=1)
    ok.counts["wire"].update(passed=5)
    bad = ProviderTally("bad-provider")
    bad.counts["wire"].update(passed=4, failed=2)
    bad.counts["other"] = Counter(failed=1)
    rows = summary_rows([ok, bad])
    assert rows[0] == ["ok-provider", "3 passed, 1 skipped", "5 passed", "-", "ok"]
    assert rows[1] == ["bad-provider", "-", "4 passed, 2 failed", "- (+ 1 failed other)", "FAIL"]


@pytest.mark.skipif(importlib.util.find_spec("kling_example") is None, reason="example plugin not installed")
def test_runs_the_suite_for_a_third_party_plugin(tmp_path: os.PathLike[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KLING_RECORD", "KLING_PLUGINS")}
    proc = subprocess.run(
        [sys.executable, "-c", "from kling_core.cli import main; main()", "contract", "example",
         "-k", "declares or has_cassettes or success-o1 or documented_outcomes"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("provider"))
    assert lines[header].split() == ["provider", "behaviour", "wire", "property", "result"]
    # behaviour: declares_itself + documented_outcomes; wire: has_cassettes + replay[success-o1]
    assert lines[header + 1].split() == ["example", "2", "passed", "2", "passed", "-", "ok"]


@pytest.mark.skipif(importlib.util.find_spec("kling_example") is None, reason="example plugin not installed")
def test_a_failing_provider_is_tallied_as_failed(tmp_path: os.PathLike[str]) -> None:
    script = """
from kling_example import ExampleProvider
from kling_core.testing.runner import run_contract, summary_rows

class WrongAuth(ExampleProvider):
    auth_header = "x-api-key"
    auth_scheme = ""

# The generated module tests the class given here, not the installed "example".
code, tallies = run_contract({"example": WrongAuth}, pytest_args=["-q", "-k", "success or declares"])
print("RESULT", code, summary_rows(tallies))
"""
    env = {k: v for k, v in os.environ.items() if k != "KLING_RECORD"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=env, check=False)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    assert line.startswith("RESULT 1 "), proc.stdout + proc.stderr
    assert "'2 failed'" in line and "'FAIL'" in line, line  # the two success-* replays
