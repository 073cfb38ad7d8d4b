"""Output paths checked before paying: writable, not a directory, not the input; default names
reserved atomically so two runs never pick the same one."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from kling_core.errors import ValidationError
from kling_core.outputs import check_output, release, remove_leftovers, reserve_default_output, staging_file


def only_problem(exc: ValidationError) -> str:
    assert len(exc.problems) == 1 and exc.problems[0].path == "output", exc.problems
    assert exc.exit_code == 2
    return exc.problems[0].message


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"input video")
    return path


# -- check_output --------------------------------------------------------------------------


def test_a_new_file_in_a_writable_folder_is_fine_and_resolved(
    tmp_path: Path, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    before = listing(tmp_path)
    assert check_output("sub/../out.mp4", inputs=[str(clip)]) == (tmp_path / "out.mp4").resolve()
    assert check_output(tmp_path / "new" / "deeper" / "o.mp4", inputs=[]) == (tmp_path / "new/deeper/o.mp4").resolve()
    assert listing(tmp_path) == before  # no folder made, no probe file left


def test_an_existing_file_is_fine(tmp_path: Path) -> None:
    (tmp_path / "old.mp4").write_bytes(b"previous take")
    assert check_output(tmp_path / "old.mp4", inputs=[]) == (tmp_path / "old.mp4").resolve()
    assert (tmp_path / "old.mp4").read_bytes() == b"previous take"


@pytest.mark.parametrize("make", ["dir", "trailing-slash"])
def test_a_directory_is_refused(tmp_path: Path, make: str) -> None:
    (tmp_path / "d.mp4").mkdir()
    target = str(tmp_path / "d.mp4") if make == "dir" else str(tmp_path / "x") + "/"
    with pytest.raises(ValidationError) as info:
        check_output(target, inputs=[])
    assert "directory" in only_problem(info.value)


def test_a_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        check_output("/dev/null", inputs=[])
    assert "not a regular file" in only_problem(info.value)


def test_an_unwritable_place_is_refused_before_anything_runs() -> None:
    # Found only after the job ran and was paid for, before ("unexpected FileNotFoundError").
    with pytest.raises(ValidationError) as info:
        check_output("/proc/x.mp4", inputs=[])
    assert "cannot write in /proc" in only_problem(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ValidationError) as info:
            check_output(ro / "o.mp4", inputs=[])
        assert "cannot write" in only_problem(info.value)
    finally:
        ro.chmod(0o755)


def test_a_parent_that_is_a_file_is_refused(tmp_path: Path, clip: Path) -> None:
    with pytest.raises(ValidationError) as info:
        check_output(clip / "o.mp4", inputs=[])
    assert "is not a directory" in only_problem(info.value)
    with pytest.raises(ValidationError):
        check_output(clip / "a" / "b" / "o.mp4", inputs=[])


def test_the_input_itself_is_refused(tmp_path: Path, clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    hard = tmp_path / "hard.mp4"
    os.link(clip, hard)
    cases = [
        ("clip.mp4", ["clip.mp4"]),
        ("sub/../clip.mp4", [str(clip)]),
        (str(link), [str(clip)]),  # the output is a link to the input
        (str(clip), [str(link)]),  # the input is given through a link
        (str(hard), [str(clip)]),  # a hard link: the same file under another name
        (str(clip), [clip.as_uri()]),  # file:// input
        (str(clip), ["https://cdn.example/in.mp4", "a.png", str(clip)]),  # an image slot, too
    ]
    for out, inputs in cases:
        with pytest.raises(ValidationError) as info:
            check_output(out, inputs=inputs)
        assert "same file as the input" in only_problem(info.value), (out, inputs)
    assert clip.read_bytes() == b"input video"


def test_dot_dot_after_a_link_is_where_the_kernel_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # link -> dir/sub, so link/../clip.mp4 is dir/clip.mp4 (not ./clip.mp4, as a lexical reading says).
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    clip = tmp_path / "dir" / "clip.mp4"
    clip.write_bytes(b"input video")
    (tmp_path / "link").symlink_to(tmp_path / "dir" / "sub")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as info:
        check_output("link/../clip.mp4", inputs=[str(clip)])
    assert "same file as the input" in only_problem(info.value)
    assert check_output("link/../new.mp4", inputs=[str(clip)]) == (tmp_path / "dir" / "new.mp4").resolve()


def test_url_inputs_and_missing_files_are_not_compared(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    assert check_output(out, inputs=["https://cdn.example/o.mp4", str(tmp_path / "missing.mp4")]) == out.resolve()


# -- reserve_default_output / release ------------------------------------------------------


def test_default_names_follow_todays_naming(tmp_path: Path) -> None:
    first = reserve_default_output("clip.mp4", folder=tmp_path)
    second = reserve_default_output("clip.mp4", folder=tmp_path)
    third = reserve_default_output("/elsewhere/clip.mov", folder=tmp_path)
    assert [p.name for p in (first, second, third)] == ["clip-edited.mp4", "clip-edited-2.mp4", "clip-edited-3.mp4"]
    assert first.stat().st_size == 0 and first.is_absolute()
    assert reserve_default_output("https://cdn.example/a/b%20c.mp4?x=1", folder=tmp_path).name == "b c-edited.mp4"
    assert reserve_default_output("https://cdn.example/", folder=tmp_path).name == "video-edited.mp4"


def test_the_default_folder_is_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert reserve_default_output("clip.mp4") == (tmp_path / "clip-edited.mp4").resolve()


def test_taken_names_are_skipped_directories_included(tmp_path: Path) -> None:
    (tmp_path / "clip-edited.mp4").write_bytes(b"an earlier take")
    (tmp_path / "clip-edited-2.mp4").mkdir()
    assert reserve_default_output("clip.mp4", folder=tmp_path).name == "clip-edited-3.mp4"
    assert (tmp_path / "clip-edited.mp4").read_bytes() == b"an earlier take"


def test_concurrent_runs_never_get_the_same_name(tmp_path: Path) -> None:
    got: list[Path] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def run() -> None:
        start.wait()
        path = reserve_default_output("clip.mp4", folder=tmp_path)
        with lock:
            got.append(path)

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 16
    assert {p.name for p in got} == {"clip-edited.mp4", *(f"clip-edited-{n}.mp4" for n in range(2, 17))}


def test_concurrent_processes_never_get_the_same_name(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "from kling_core.outputs import reserve_default_output as r; print(r('clip.mp4'))"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    names = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(names)) == 6


def test_an_unwritable_folder_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        reserve_default_output("clip.mp4", folder=Path("/proc"))
    assert "cannot create the default output" in only_problem(info.value)


def test_release_removes_only_an_empty_placeholder(tmp_path: Path) -> None:
    reserved = reserve_default_output("clip.mp4", folder=tmp_path)
    assert release(reserved) is True and not reserved.exists()
    assert release(reserved) is False  # already gone
    saved = reserve_default_output("clip.mp4", folder=tmp_path)
    saved.write_bytes(b"the saved result")
    assert release(saved) is False and saved.read_bytes() == b"the saved result"
    (tmp_path / "d").mkdir()
    assert release(tmp_path / "d") is False and (tmp_path / "d").is_dir()


def test_remove_leftovers_takes_only_this_outputs_part_files(tmp_path: Path) -> None:
    dest = tmp_path / "o.mp4"
    names = [".o.mp4.a1b2c3.part", "..o.mp4.a1b2c3.part.d4e5f6.part", ".other.mp4.a1.part", "o.mp4", ".o.mp4.keep"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_leftovers(dest)
    assert sorted(p.name for p in removed) == sorted([".o.mp4.a1b2c3.part", "..o.mp4.a1b2c3.part.d4e5f6.part"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.mp4.keep", ".other.mp4.a1.part", "o.mp4"]


# -- staging files and what a killed writer leaves ---------------------------------------------


def test_a_held_staging_file_is_never_taken_for_a_leftover(tmp_path: Path) -> None:
    dest = tmp_path / "o.mp4"
    with staging_file(dest) as staging:
        assert staging.name.startswith(".o.mp4.") and staging.name.endswith(".part") and staging.exists()
        staging.write_bytes(b"half a video")
        assert remove_leftovers(dest) == [] and staging.exists()
    assert not staging.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_staging_file_of_a_killed_process_is_removed(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    code = ("import sys, time; from kling_core.outputs import staging_file\n"
            "with staging_file(sys.argv[1]) as s:\n"
            "    s.write_bytes(b'half'); print(s, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "o.mp4")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    staging = Path(proc.stdout.readline().strip())
    assert remove_leftovers(tmp_path / "o.mp4") == []  # alive: its file is locked
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert staging.exists()
    assert remove_leftovers(tmp_path / "o.mp4") == [staging] and not staging.exists()


def test_an_unlocked_new_file_waits_out_its_grace(tmp_path: Path) -> None:
    fresh = tmp_path / ".o.mp4.abc.new"
    fresh.write_bytes(b"")
    assert remove_leftovers(tmp_path / "o.mp4") == []
    old = time.time() - 120
    os.utime(fresh, (old, old))
    assert remove_leftovers(tmp_path / "o.mp4") == [fresh]
