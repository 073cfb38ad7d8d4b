"""docs/plugin-tutorial.md, executed: its files are written out, installed, and `kling contract` passes.

Every fenced block introduced by a ``kling-acme/<path>`` line becomes that file. The plugin is
"installed" the way an installer would leave it for ``importlib.metadata``: a ``.dist-info``
folder whose ``entry_points.txt`` comes from the tutorial's own pyproject.toml, beside the
package on ``PYTHONPATH`` (no pip, no network). Then ``kling providers`` and ``kling contract
acme`` run as a user runs them, in a separate process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from test_public_api import PUBLIC_FOR_TESTS, PUBLIC_MODULES, import_problems

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "plugin-tutorial.md"
_FILE_BLOCK = re.compile(r"^`kling-acme/(?P<path>[^`]+)`[^\n]*\n\n```[a-z]*\n(?P<body>.*?)^```", re.S | re.M)


def tutorial_files() -> dict[str, str]:
    return {m["path"]: m["body"] for m in _FILE_BLOCK.finditer(TUTORIAL.read_text("utf-8"))}


def build(root: Path) -> tuple[Path, Path]:
    """The tutorial's project under root/kling-acme, and a site folder holding its dist-info."""
    project = root / "kling-acme"
    for rel, body in tutorial_files().items():
        dest = project / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(body, "utf-8")
    meta = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))["project"]
    site = root / "site"
    info = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    groups = meta.get("entry-points", {})
    (info / "entry_points.txt").write_text(
        "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n" for g, eps in groups.items())
    )
    return project, site


def test_the_tutorial_names_every_file_it_needs() -> None:
    files = tutorial_files()
    assert {"pyproject.toml", "kling_acme/__init__.py", "kling_acme/provider.py", "tests/test_contract.py"} <= set(files)
    assert any(f.startswith("kling_acme/cassettes/") for f in files)
    assert any(f.startswith("kling_acme/schemas/") for f in files)


def test_the_tutorial_plugin_imports_only_public_names(tmp_path: Path) -> None:
    project, _site = build(tmp_path)
    problems = [p for f in (project / "kling_acme").rglob("*.py") for p in import_problems(f, PUBLIC_MODULES, tmp_path)]
    problems += [p for f in (project / "tests").rglob("*.py") for p in import_problems(f, PUBLIC_FOR_TESTS, tmp_path)]
    assert not problems, "\n".join(problems)


@pytest.mark.ffmpeg  # slow-ish: a whole `kling contract` run in a child process
def test_kling_contract_passes_on_the_tutorial_plugin(tmp_path: Path) -> None:
    project, site = build(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "KLING_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(project)])

    def kling(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    listed = kling("providers")
    assert listed.returncode == 0, listed.stderr
    assert "acme: Example Video API (tutorial plugin)" in listed.stdout
    run = kling("contract", "acme")
    summary = [line for line in run.stdout.splitlines() if line.startswith("acme ")]
    assert run.returncode == 0 and summary and summary[-1].rstrip().endswith("ok"), run.stdout[-4000:] + run.stderr
