"""Run the shipped contract suite over mutant plugins in a child pytest, and read its report.

The mutant tests (test_testing_data_mutants.py, test_kit_blind_spots.py) write a module holding
mutant provider classes, then one suite class per provider exactly as ``kling contract``
generates them (kling_core.testing.runner._MODULE), run it once, and look at which tests failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

# What `kling contract` generates for each provider.
SUITES = textwrap.dedent(
    '''

    from kling_core.testing import ProviderContractTests
    from kling_core.testing.suite import default_cassette_dir


    class _Contract(ProviderContractTests):
        property_derandomize = True  # the same examples every run, should the selection grow
    '''
)
SUITE = textwrap.dedent(
    '''

    class Test{n}(_Contract):
        provider_name = {n}.name
        provider_cls = {n}
        cassette_dir = str(default_cassette_dir({n}))
    '''
)
SELECTION = "test_behaviour_ or test_wire_"
Report = Mapping[str, Mapping[str, tuple[str, str]]]  # suite class -> test -> (outcome, failure text)


def child_env() -> dict[str, str]:
    """This process's environment without what would change the child's run (recording, a plugin
    allow-list)."""
    return {k: v for k, v in os.environ.items() if k not in ("KLING_RECORD", "KLING_PLUGINS")}


def run_suites(root: Path, module: str, mutants: str, classes: Iterable[str]) -> Report:
    """One child pytest over a suite class for each of ``classes`` (defined in ``mutants``)."""
    source = mutants + SUITES + "".join(SUITE.format(n=n) for n in classes)
    (root / module).write_text(source, "utf-8")
    (root / "pytest.ini").write_text("[pytest]\n", "utf-8")
    xml = root / "report.xml"
    args = [sys.executable, "-m", "pytest", str(root), "-c", str(root / "pytest.ini"), "--rootdir", str(root),
            "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "-k", SELECTION, f"--junitxml={xml}"]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        args += ["-p", "kling_core.testing.pytest_plugin"]  # as the runner does
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, env=child_env(), cwd=root)
    assert xml.exists(), f"the child pytest wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        bad = next((e for e in (case.find("failure"), case.find("error")) if e is not None), None)
        if bad is not None:
            outcome, text = "failed", f"{bad.get('message', '')}\n{bad.text or ''}"
        else:
            outcome, text = ("skipped" if case.find("skipped") is not None else "passed"), ""
        out.setdefault(cls, {})[case.get("name", "")] = (outcome, text)
    return out


def failures(report: Report, name: str) -> dict[str, str]:
    """The failed tests of the suite for provider class ``name``: test name -> failure text."""
    cls = f"Test{name}"
    assert cls in report, f"{cls} did not run: {sorted(report)}"
    return {test: text for test, (outcome, text) in report[cls].items() if outcome == "failed"}
