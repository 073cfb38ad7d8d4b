"""Bad input from the CLI: one clear message naming the field, exit 2, no traceback, no output.

These run the real ``kling`` entry point in a subprocess, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PY = sys.executable


def kling(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "KLING_PLUGINS": "mock", **(env or {})}
    return subprocess.run(
        [PY, "-m", "kling_core", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    # Placeholders are enough: every case here must fail before any media is read.
    for name in ("clip.mp4", "a.png", "b.png", "c.png", "d.png", "e.png"):
        (tmp_path / name).write_bytes(b"\0")
    return tmp_path


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *needles: str, cwd: Path) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert not list(cwd.glob("*edited*.mp4")) and not (cwd / "out.mp4").exists()
    assert not list(cwd.glob(".*.part"))


def test_missing_prompt(inputs: Path) -> None:
    proc = kling("edit", "clip.mp4", "-o", "out.mp4", cwd=inputs)
    assert_clean_failure(proc, "Missing option '--prompt'", cwd=inputs)


def test_a_blank_prompt_is_refused_naming_the_field(inputs: Path) -> None:
    proc = kling("edit", "clip.mp4", "-p", "   ", "-o", "out.mp4", cwd=inputs)
    assert_clean_failure(proc, "prompt: must not be blank: it holds only whitespace", cwd=inputs)


def test_reference_to_an_image_the_request_lacks(inputs: Path) -> None:
    proc = kling("edit", "clip.mp4", "-p", "put @Image3 behind him", "--image", "a.png", "--image", "b.png",
                 "-o", "out.mp4", cwd=inputs)
    assert_clean_failure(proc, "prompt: @Image3 refers to", "(2 images given)", cwd=inputs)
    assert proc.stderr.count("error:") == 1


def test_five_references_to_a_four_reference_provider(inputs: Path) -> None:
    proc = kling("edit", "clip.mp4", "-p", "x", "--image", "a.png", "--image", "b.png", "--image", "c.png",
                 "--element", "d.png:e.png", "--element", "e.png:d.png", "-o", "out.mp4", cwd=inputs)
    assert_clean_failure(proc, "images: 3 images + 2 elements = 5 references, at most 4", "mock", cwd=inputs)


def test_unknown_key_in_kling_toml(inputs: Path) -> None:
    (inputs / "kling.toml").write_text('default_provider = "mock"\n[providers.mock]\npoll_every = 3\n')
    proc = kling("edit", "clip.mp4", "-p", "x", "-o", "out.mp4", cwd=inputs)
    assert_clean_failure(proc, "kling.toml", "providers.mock.poll_every", "unknown field", cwd=inputs)


def test_video_path_that_does_not_exist(inputs: Path) -> None:
    proc = kling("edit", "missing.mp4", "-p", "x", "-o", "out.mp4", cwd=inputs)
    assert_clean_failure(proc, "video: file not found", cwd=inputs)


def test_a_hosted_provider_without_its_key_names_the_variable(inputs: Path) -> None:
    proc = kling("edit", "https://media.example/in.mp4", "-p", "x", "--provider", "fal", "-o", "out.mp4",
                 cwd=inputs, env={"KLING_PLUGINS": "mock,fal"})
    assert_clean_failure(proc, "set the environment variable FAL_KEY", cwd=inputs)


def test_providers_json_lists_the_mock(inputs: Path) -> None:
    proc = kling("providers", "--json", cwd=inputs)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    mock = next(p for p in doc["providers"] if p["name"] == "mock")
    assert {m["model"] for m in mock["models"]} == {"kling-o1", "kling-o3"}
    assert mock["keys"] == {}


def test_schema_prints_a_valid_schema(inputs: Path) -> None:
    from jsonschema import Draft202012Validator

    proc = kling("schema", "edit-request", cwd=inputs)
    assert proc.returncode == 0
    Draft202012Validator.check_schema(json.loads(proc.stdout))


def test_config_check_reports_file_key_and_reason(inputs: Path) -> None:
    (inputs / "kling.toml").write_text('[providers.fal]\nkey = "sk-literal-secret"\n')
    proc = kling("config", "check", cwd=inputs)
    assert_clean_failure(proc, "kling.toml", "providers.fal.key", "must be env:VARIABLE", cwd=inputs)
    assert "sk-literal-secret" not in proc.stderr


def test_config_check_validates_provider_options_offline(inputs: Path) -> None:
    (inputs / "kling.toml").write_text('[providers.mock.options]\nfail = "explode"\n')
    proc = kling("config", "check", cwd=inputs)
    assert_clean_failure(proc, "kling.toml", "providers.mock.options.fail", "'explode' is not one of", cwd=inputs)
