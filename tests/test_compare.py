"""`kling compare` and `kling edit --sheet`: a PNG contact sheet of an edit's input and output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from media_fixtures import sample

from kling_core.cli.compare_cmd import caption_for, record_for
from kling_core.joblog import JobLog
from kling_core.media import SampleMedia
from kling_core.media.locate import find_ffmpeg
from kling_core.media.samples import generate
from kling_core.media.sheet import TILE_HEIGHT, _wrap, sample_times

__all__ = ["sample"]
pytestmark = pytest.mark.ffmpeg

RED = (230, 40, 40)
BLUE = (40, 80, 230)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "KLING_PLUGINS": "mock"})


def solid_clip(dest: Path, rgb: tuple[int, int, int], *, size: str, duration: float) -> Path:
    colour = "0x{:02x}{:02x}{:02x}".format(*rgb)
    args = ["-f", "lavfi", "-i", f"color=c={colour}:size={size}:rate=10:duration={duration:g}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    return generate(find_ffmpeg(), args, dest, fmt="mp4")


def decode_png(path: Path) -> tuple[int, int, bytes]:
    import av

    with av.open(str(path), format="png_pipe", options={"protocol_whitelist": "file"}) as container:
        frame = next(container.decode(video=0))
        width, height = frame.width, frame.height
    raw = subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-f", "png_pipe", "-i", f"file:{path}",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], capture_output=True, check=True).stdout
    assert len(raw) == width * height * 3
    return width, height, raw


def pixel(image: tuple[int, int, bytes], x: int, y: int) -> tuple[int, int, int]:
    width, _height, raw = image
    i = (y * width + x) * 3
    return raw[i], raw[i + 1], raw[i + 2]


def close(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 16) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def no_png_left(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.is_file() and p.name.endswith((".png", ".part"))]


@pytest.fixture
def clips(tmp_path: Path) -> tuple[Path, Path]:
    # Different sizes and durations: tiles follow the input's shape, times the shorter clip.
    return (solid_clip(tmp_path / "in.mp4", RED, size="160x90", duration=2.0),
            solid_clip(tmp_path / "out.mp4", BLUE, size="320x180", duration=1.5))


def test_sample_times_are_evenly_spaced_through_the_shorter_duration() -> None:
    assert sample_times(8.0, 4.0, 4) == (0.5, 1.5, 2.5, 3.5)
    assert sample_times(2.0, 6.0, 1) == (1.0,)


def test_a_long_prompt_is_cut_short_but_the_settings_line_is_kept() -> None:
    lines = _wrap("word " * 500 + "\nprovider=mock · model=kling-o1", 600)
    assert len(lines) == 12 and lines[-1] == "provider=mock · model=kling-o1" and lines[-2].endswith("…")


def test_compare_puts_the_input_on_top_and_the_output_below(clips: tuple[Path, Path], tmp_path: Path) -> None:
    source, edited = clips
    proc = run("compare", str(source), str(edited), "-o", "sheet.png", "--frames", "3", "--caption", "make it blue",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "sheet.png")
    image = decode_png(tmp_path / "sheet.png")
    width, height, _ = image
    tile_w = TILE_HEIGHT * 16 // 9
    assert width == 3 * tile_w
    assert height >= 2 * TILE_HEIGHT  # plus the caption band when a font is found
    for i in range(3):
        x = i * tile_w + tile_w // 2
        assert close(pixel(image, x, TILE_HEIGHT // 2), RED), (i, pixel(image, x, TILE_HEIGHT // 2))
        assert close(pixel(image, x, TILE_HEIGHT * 3 // 2), BLUE), (i, pixel(image, x, TILE_HEIGHT * 3 // 2))
    if height > 2 * TILE_HEIGHT:  # the band is dark grey behind the caption's white text
        assert close(pixel(image, width - 4, height - 4), (0x20, 0x20, 0x20))
    else:
        assert "make it blue" in proc.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("case", ["missing", "not-a-video", "unwritable", "not-png", "a-directory"])
def test_bad_input_exits_2_with_one_message_and_writes_nothing(case: str, clips: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    source, edited = clips
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "folder.png").mkdir()
    args = {
        "missing": (str(source), str(tmp_path / "nope.mp4"), "-o", "sheet.png"),
        "not-a-video": (str(tmp_path / "notes.txt"), str(edited), "-o", "sheet.png"),
        "unwritable": (str(source), str(edited), "-o", str(tmp_path / "notes.txt" / "sheet.png")),
        "not-png": (str(source), str(edited), "-o", "sheet.jpg"),
        "a-directory": (str(source), str(edited), "-o", str(tmp_path / "folder.png")),
    }[case]
    proc = run("compare", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert no_png_left(tmp_path)
    assert source.stat().st_size > 0


def test_edit_sheet_writes_one_and_compare_captions_from_the_job_log(sample: SampleMedia, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = run("edit", str(sample.video), "-p", "warm it up", "--quality", "std", "-o", str(out),
               "--sheet", "edit-sheet.png", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert f"contact sheet: {tmp_path / 'edit-sheet.png'}" in proc.stderr
    width, height, _ = decode_png(tmp_path / "edit-sheet.png")
    assert width == 4 * (TILE_HEIGHT * 16 // 9) and height >= 2 * TILE_HEIGHT
    # The job log knows the saved output, so `kling compare` captions it without --caption.
    caption = caption_for(record_for(JobLog(), out))
    assert caption.startswith("warm it up\n") and "provider=mock" in caption and "quality=std" in caption
    again = run("compare", str(sample.video), str(out), "-o", "again.png", "--frames", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert decode_png(tmp_path / "again.png")[0] == 2 * (TILE_HEIGHT * 16 // 9)


def test_edit_sheet_is_refused_before_submitting(sample: SampleMedia, tmp_path: Path) -> None:
    for extra in (("--no-wait",), ("--dry-run",), ()):
        sheet = "s.png" if extra else "s.gif"
        proc = run("edit", str(sample.video), "-p", "x", "--sheet", sheet, *extra, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "sheet" in proc.stderr
    assert not JobLog().path.exists() or not JobLog().list()
    assert no_png_left(tmp_path)
