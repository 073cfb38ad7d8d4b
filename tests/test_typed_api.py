"""The Python API is typed for users: `mypy --strict` on a user's script catches a misspelt
keyword and a value outside a closed set, and accepts paths as `pathlib.Path`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

GOOD = '''
from pathlib import Path

import kling_core
from kling_core import EditResult, JobHandle, JobStatus


def submitted(handle: JobHandle) -> None:
    print(handle.provider, handle.job_id)


def progress(status: JobStatus) -> None:
    print(status.state)


result: EditResult = kling_core.edit(
    Path("clip.mp4"), "replace the sky with @Image1", images=[Path("sky.png"), "https://cdn.example/a.png"],
    output=Path("out.mp4"), quality="std", model="kling-o3", edit_mode="reference", aspect_ratio="16:9",
    keep_audio=True, on_submit=submitted, on_status=progress, timeout=600.0, provider="mock",
)


async def main() -> None:
    again = await kling_core.aedit("clip.mp4", "x", output="o.mp4", on_submit=lambda h: None, new=True)
    print(again.video.path)


with kling_core.EditClient(provider="mock") as client:
    request = client.request(Path("clip.mp4"), "x", quality="pro", model="kling-o1")
    saved = client.edit(request, output=Path("out.mp4"), on_submit=submitted, timeout=30)
'''

# Each bad line, and the error mypy must report on it.
BAD = {
    'kling_core.edit("a.mp4", "x", ouptut="o.mp4")': r'Unexpected keyword argument "ouptut"',
    'kling_core.edit("a.mp4", "x", quality="ultra")': r'Argument "quality" .*"Literal\[.ultra.\]"',
    'kling_core.edit("a.mp4", "x", provder="fal")': r'Unexpected keyword argument "provder"',
    'kling_core.edit("a.mp4", "x", model="kling-o2")': r'Argument "model" .*incompatible type',
    'kling_core.edit("a.mp4", "x", edit_mode="transform")': r'Argument "edit_mode" .*incompatible type',
    'kling_core.edit("a.mp4", "x", aspect_ratio="4:3")': r'Argument "aspect_ratio" .*incompatible type',
    'kling_core.edit(3, "x")': r'Argument 1 .*incompatible type "int"',
    'kling_core.edit("a.mp4", "x", on_submit=lambda: None)': r'Argument "on_submit" .*incompatible type',
    'kling_core.EditClient().request("a.mp4", "x", qualty="pro")': r'Unexpected keyword argument "qualty"',
    'kling_core.EditClient().request("a.mp4", "x", quality="hd")': r'Argument "quality" .*incompatible type',
    'kling_core.EditClient(provder="fal")': r'Unexpected keyword argument "provder"',
}


def mypy(folder: Path, *files: str) -> subprocess.CompletedProcess[str]:
    (folder / "mypy.ini").write_text("[mypy]\n")  # the user's settings, not this project's
    env = {"MYPYPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]), "PATH": os.defpath}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "mypy.ini", "--follow-imports=silent",
         "--cache-dir", str(folder / ".mypy_cache"), "--no-error-summary", "--show-error-codes", *files],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[str]]:
    pytest.importorskip("mypy")
    folder = tmp_path_factory.mktemp("typed")
    (folder / "good.py").write_text(textwrap.dedent(GOOD))
    (folder / "bad.py").write_text("import kling_core\n\n" + "\n".join(BAD) + "\n")
    proc = mypy(folder, "good.py", "bad.py")
    assert proc.returncode in (0, 1), proc.stderr + proc.stdout
    lines = [ln for ln in proc.stdout.splitlines() if ": error:" in ln]
    return [ln for ln in lines if ln.startswith("good.py")], [ln for ln in lines if ln.startswith("bad.py")]


def test_a_well_typed_script_passes_strict(checked: tuple[list[str], list[str]]) -> None:
    good, _bad = checked
    assert good == []


@pytest.mark.parametrize(("number", "line"), list(enumerate(BAD, start=3)), ids=list(BAD.values()))
def test_each_mistake_fails_strict(checked: tuple[list[str], list[str]], number: int, line: str) -> None:
    _good, bad = checked
    here = [e for e in bad if e.startswith(f"bad.py:{number}:")]
    assert here, f"mypy --strict accepted line {number}: {line}"
    assert any(re.search(BAD[line], e) for e in here), here
