"""Every Python snippet in README.md and docs/ runs, so the docs cannot drift from the code.

Each block runs in a fresh namespace, in a temporary folder holding the media the README names
(``clip.mp4``, ``sky.png``), with no config (so the provider is the offline mock). The tutorial's
blocks are files of a plugin, built and run by tests/test_tutorial.py instead.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.media import SampleMedia

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BUILT_ELSEWHERE = {"plugin-tutorial.md"}
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def snippets() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        if doc.name in BUILT_ELSEWHERE:
            continue
        text = doc.read_text("utf-8")
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((f"{doc.relative_to(ROOT)}:{line}", m.group(1)))
    return out


def test_the_docs_have_snippets() -> None:
    assert len(snippets()) >= 4  # README (2 edits, plugin hook, contract suite), api.md, http-providers.md


@pytest.mark.ffmpeg
@pytest.mark.parametrize(("where", "code"), snippets(), ids=[w for w, _ in snippets()])
def test_snippet_runs(where: str, code: str, tmp_path: Path, sample: SampleMedia,  # noqa: F811
                      monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(sample.video, tmp_path / "clip.mp4")
    shutil.copy(sample.images[0], tmp_path / "sky.png")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, where, "exec"), {"__name__": f"snippet_{where}"})
