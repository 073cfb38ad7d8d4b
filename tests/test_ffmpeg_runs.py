"""How often an edit runs ffmpeg: `-version` once per binary (remembered across processes until
the binary changes), then the render; nothing else. Counted, never timed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from media_fixtures import sample

from kling_core.cli import main
from kling_core.errors import ConfigError
from kling_core.media import SampleMedia, locate
from kling_core.media.locate import MEMO_FILE, find_ffmpeg, require_ffmpeg
from kling_core.settings import MediaSettings

__all__ = ["sample"]


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _new_process() -> None:
    """What a later process knows: only the memo file (this one's proofs are forgotten)."""
    locate._proven.clear()


def _fake(tmp_path: Path, log: Path, extra: str = "") -> Path:
    return _script(tmp_path / "ff", f"echo run >> {log}\necho 'ffmpeg version 9.9 fake'\n{extra}")


def test_a_proof_is_remembered_by_later_processes_until_the_binary_changes(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    fake = _fake(tmp_path, log)
    env = {"KLING_CACHE_DIR": str(tmp_path / "cache")}
    media = MediaSettings(ffmpeg=str(fake))
    assert require_ffmpeg(media, env) == str(fake.resolve())
    _new_process()
    require_ffmpeg(media, env)
    assert log.read_text().count("run") == 1
    _fake(tmp_path, log, "# changed\n")  # same path, new content (size, mtime and ctime move)
    _new_process()
    require_ffmpeg(media, env)
    assert log.read_text().count("run") == 2
    os.chmod(fake, 0o700)  # only the ctime moves: checked again too
    _new_process()
    require_ffmpeg(media, env)
    assert log.read_text().count("run") == 3


def test_a_binary_broken_after_its_proof_is_an_error_again(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    fake = _fake(tmp_path, log)
    env = {"KLING_CACHE_DIR": str(tmp_path / "cache")}
    media = MediaSettings(ffmpeg=str(fake))
    require_ffmpeg(media, env)
    _script(fake, "exit 3\n")
    _new_process()
    with pytest.raises(ConfigError, match=r"-version failed \(exit code 3\)") as info:
        require_ffmpeg(media, env)
    assert info.value.key == "media.ffmpeg"
    fake.unlink()
    _new_process()
    with pytest.raises(ConfigError, match="ffmpeg not found at"):
        require_ffmpeg(media, env)


def test_a_damaged_memo_is_ignored_and_rewritten(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    fake = _fake(tmp_path, log)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / MEMO_FILE).write_text("{not json")
    env = {"KLING_CACHE_DIR": str(cache)}
    require_ffmpeg(MediaSettings(ffmpeg=str(fake)), env)
    assert log.read_text().count("run") == 1
    assert json.loads((cache / MEMO_FILE).read_text())["proven"][0]["stamp"][0] == str(fake.resolve())


def test_a_memo_cannot_point_the_default_lookup_at_another_program(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    fake = _fake(tmp_path, log)
    cache = tmp_path / "cache"
    env = {"KLING_CACHE_DIR": str(cache)}
    require_ffmpeg(MediaSettings(ffmpeg=str(fake)), env)  # proven, but chosen by config
    doc = json.loads((cache / MEMO_FILE).read_text())
    doc["proven"][0]["bundled"] = True  # as if it were imageio-ffmpeg's own binary
    (cache / MEMO_FILE).write_text(json.dumps(doc))
    _new_process()
    assert find_ffmpeg(MediaSettings(), env) != str(fake.resolve())


def test_the_bundled_binary_is_found_without_imageio_ffmpeg_once_proven(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"KLING_CACHE_DIR": str(tmp_path / "cache")}
    # An earlier test in this process may have proven the binary already: forget that, so the
    # proof is made (and written to this test's memo) here, whatever ran before.
    _new_process()
    bundled = require_ffmpeg(MediaSettings(), env)
    _new_process()
    import imageio_ffmpeg

    def not_asked() -> str:
        raise RuntimeError("imageio-ffmpeg was asked")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", not_asked)
    assert find_ffmpeg(MediaSettings(), env) == bundled
    assert require_ffmpeg(MediaSettings(), env) == bundled
    # imageio-ffmpeg's own override is its lookup to make: then it is asked again.
    with pytest.raises(ConfigError, match="imageio-ffmpeg was asked"):
        find_ffmpeg(MediaSettings(), {**env, "IMAGEIO_FFMPEG_EXE": bundled})


@pytest.mark.ffmpeg
def test_an_edit_runs_ffmpeg_once_for_the_render_and_version_only_the_first_time(
    sample: SampleMedia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "argv"
    real = find_ffmpeg()
    wrapper = _script(tmp_path / "ffmpeg", f'echo "$*" >> {log}\nexec {real} "$@"\n')
    monkeypatch.setenv("KLING_FFMPEG", str(wrapper))
    monkeypatch.setenv("KLING_PLUGINS", "mock")

    def edit(n: int) -> list[str]:
        _new_process()
        log.unlink(missing_ok=True)
        with pytest.raises(SystemExit) as done:
            main(["edit", str(sample.video), "--prompt", "night", "--provider", "mock", "--new", "--quiet",
                  "--quality", "std", "-o", str(tmp_path / f"out{n}.mp4")])
        assert done.value.code == 0, capsys.readouterr().err
        return log.read_text().splitlines()

    first = edit(1)
    assert [("-version" in a, "-filter_complex" in a) for a in first] == [(True, False), (False, True)]
    second = edit(2)
    assert [("-version" in a, "-filter_complex" in a) for a in second] == [(False, True)]
