"""Checks before paying: numeric settings finite and in range, config files that are not TOML
text, ffmpeg proven runnable (``kling config check`` included), the mock's own numbers."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kling_core_plugins.mock.options import (
    MAX_SECONDS,
    MockOptions,
    config_options,
    effective,
    request_problems,
)

from kling_core.config import config_from_document, config_to_document, load_config
from kling_core.errors import ConfigError, ValidationError
from kling_core.media import locate
from kling_core.media.locate import find_ffmpeg, require_ffmpeg
from kling_core.schema_store import load_schema, validator
from kling_core.settings import (
    MAX_DEADLINE,
    MAX_DOWNLOAD_BYTES,
    MAX_DOWNLOAD_TIMEOUT,
    MAX_FFMPEG_TIMEOUT,
    MAX_POLL_DELAY,
    MAX_POLL_FACTOR,
    MAX_REQUEST_TIMEOUT,
    MAX_RETRY_AFTER,
    MAX_STATUS_RETRIES,
    MediaSettings,
    PollSettings,
    ProviderSettings,
)

PY = sys.executable

# Every numeric setting: its dotted key, an accepted value, and its upper bound.
NUMERIC: list[tuple[str, float, float]] = [
    ("providers.fal.timeout", 30.0, MAX_REQUEST_TIMEOUT),
    ("providers.fal.poll.initial", 1.0, MAX_POLL_DELAY),
    ("providers.fal.poll.factor", 1.5, MAX_POLL_FACTOR),
    ("providers.fal.poll.max", 20.0, MAX_POLL_DELAY),
    ("providers.fal.poll.jitter", 0.25, 0.999),
    ("providers.fal.poll.deadline", 1800.0, MAX_DEADLINE),
    ("providers.fal.poll.status_retries", 5, MAX_STATUS_RETRIES),
    ("providers.fal.poll.max_retry_after", 120.0, MAX_RETRY_AFTER),
    ("media.max_download_bytes", 1000, MAX_DOWNLOAD_BYTES),
    ("media.download_timeout", 60.0, MAX_DOWNLOAD_TIMEOUT),
    ("media.ffmpeg_timeout", 300.0, MAX_FFMPEG_TIMEOUT),
]
KEYS = [key for key, _, _ in NUMERIC]


def doc_with(key: str, value: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    node = doc
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return doc


def toml_with(key: str, literal: str) -> str:
    *parents, last = key.split(".")
    return f"[{'.'.join(parents)}]\n{last} = {literal}\n"


def kling(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "KLING_PLUGINS": "mock", **(env or {})}
    full_env.pop("KLING_CONFIG", None)
    full_env.pop("KLING_FFMPEG", None)
    return subprocess.run([PY, "-m", "kling_core", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=120)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_one_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout and "unexpected" not in proc.stderr
    assert proc.stderr.count("error:") == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


# -- numeric settings ------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "good", "limit"), NUMERIC, ids=KEYS)
def test_sane_values_are_accepted(key: str, good: float, limit: float) -> None:
    config_from_document(doc_with(key, good))
    config_from_document(doc_with(key, int(limit) if isinstance(good, int) else limit))


@pytest.mark.parametrize(("key", "good", "limit"), NUMERIC, ids=KEYS)
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, -1, 1e300, "limit+"])
def test_inf_nan_negative_and_absurd_values_are_refused_naming_the_key(
    key: str, good: float, limit: float, bad: Any
) -> None:
    if bad == "limit+":
        bad = limit * 2 if limit > 1 else 1.0
    if isinstance(good, int) and isinstance(bad, float) and math.isfinite(bad):
        bad = int(bad)
    with pytest.raises(ValidationError) as info:
        config_from_document(doc_with(key, bad))
    assert [p.path for p in info.value.problems] == [key], info.value


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("literal", ["inf", "-inf", "nan", "+inf", "1e999", "-5", "9" * 30])
def test_a_toml_file_with_such_values_names_the_file_and_key(tmp_path: Path, key: str, literal: str) -> None:
    path = tmp_path / "kling.toml"
    path.write_text(toml_with(key, literal))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.exit_code == 2
    assert info.value.file == str(path) and info.value.key == key, str(info.value)
    assert str(info.value).startswith(f"{path}: {key}: ")


def test_messages_say_what_is_wrong() -> None:
    cases = {
        ("providers.fal.poll.deadline", math.inf): "must be a finite number, got inf",
        ("providers.fal.poll.deadline", math.nan): "must be a finite number, got nan",
        ("providers.fal.poll.deadline", 1e9): "must be at most 604800 s, got 1e+09",
        ("providers.fal.timeout", -1): "must be greater than 0, got -1",
        ("media.max_download_bytes", 2**41): "must be at most 1.09951e+12 bytes",
        ("providers.fal.poll.factor", 50): "must be at most 10, got 50",
    }
    for (key, value), message in cases.items():
        with pytest.raises(ValidationError) as info:
            config_from_document(doc_with(key, value))
        assert message in str(info.value), (key, str(info.value))


def test_the_settings_objects_refuse_the_same_in_python() -> None:
    for make in (lambda: PollSettings(deadline=math.inf), lambda: PollSettings(initial=math.nan),
                 lambda: ProviderSettings(timeout=math.inf), lambda: MediaSettings(ffmpeg_timeout=1e12),
                 lambda: MediaSettings(max_download_bytes=10**400)):
        with pytest.raises(ValueError, match="must be"):
            make()


def test_the_schema_states_the_same_ranges() -> None:
    schema = load_schema("config")
    media = schema["properties"]["media"]["properties"]
    provider = schema["$defs"]["provider"]["properties"]
    poll = provider["poll"]["properties"]
    assert media["max_download_bytes"]["maximum"] == MAX_DOWNLOAD_BYTES
    assert media["download_timeout"]["maximum"] == MAX_DOWNLOAD_TIMEOUT
    assert media["ffmpeg_timeout"]["maximum"] == MAX_FFMPEG_TIMEOUT
    assert provider["timeout"]["maximum"] == MAX_REQUEST_TIMEOUT
    assert poll["initial"]["maximum"] == poll["max"]["maximum"] == MAX_POLL_DELAY
    assert poll["factor"]["maximum"] == MAX_POLL_FACTOR
    assert poll["deadline"]["maximum"] == MAX_DEADLINE
    assert poll["status_retries"]["maximum"] == MAX_STATUS_RETRIES
    assert poll["max_retry_after"]["maximum"] == MAX_RETRY_AFTER
    for key, _good, limit in NUMERIC:
        over = doc_with(key, limit * 2 if limit > 1 else 1.0)
        assert list(validator("config").iter_errors(over)), key


# -- cancel_on_timeout -----------------------------------------------------------------------


def test_cancel_on_timeout_is_a_provider_setting(tmp_path: Path) -> None:
    assert ProviderSettings().cancel_on_timeout is False
    path = tmp_path / "kling.toml"
    path.write_text("[providers.fal]\ncancel_on_timeout = true\n")
    cfg = load_config(path)
    assert cfg.provider_settings("fal").cancel_on_timeout is True
    assert cfg.provider_settings("mock").cancel_on_timeout is False
    doc = config_to_document(cfg)
    assert doc["providers"]["fal"]["cancel_on_timeout"] is True
    assert list(validator("config").iter_errors(doc)) == []
    assert config_from_document(doc) == cfg
    with pytest.raises(ValidationError, match=r"providers\.fal\.cancel_on_timeout: expected a boolean"):
        config_from_document({"providers": {"fal": {"cancel_on_timeout": "yes"}}})
    assert list(validator("config").iter_errors({"providers": {"fal": {"cancel_on_timeout": "yes"}}}))


# -- files that are not TOML text ------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)), "is a binary file"),
        ('default_provider = "caf\u00e9"\n'.encode("latin-1"), "is not UTF-8 text (invalid byte 0xe9 on line 1)"),
        (b"\xff\xfe" + 'default_provider = "mock"\n'.encode("utf-16-le"), "binary file"),
        (b"x" * (1024 * 1024 + 1), "is larger than 1024 KiB"),
        (b"default_provider = \n", "not valid TOML"),
    ],
    ids=["elf", "latin-1", "utf-16", "huge", "bad-toml"],
)
def test_a_file_that_is_not_toml_text_names_the_file(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "kling.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ") and reason in str(info.value)
    with pytest.raises(ConfigError, match=r"kling\.toml"):
        load_config(cwd=tmp_path)  # found by name, the same


def test_a_utf8_bom_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "kling.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'default_provider = "fal"\n')
    assert load_config(path).default_provider == "fal"


def test_a_directory_or_an_unreadable_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigError, match=r"dir\.toml: is a directory"):
        load_config(tmp_path / "dir.toml")
    if os.geteuid() != 0:  # root reads through permission bits
        locked = tmp_path / "locked.toml"
        locked.write_text('default_provider = "mock"\n')
        locked.chmod(0)
        with pytest.raises(ConfigError, match=r"locked\.toml: cannot be read"):
            load_config(locked)


def test_a_pyproject_whose_tool_kling_is_not_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool]\nkling = 5\n")
    with pytest.raises(ConfigError, match=r"must be a table"):
        load_config(tmp_path / "pyproject.toml")


# -- ffmpeg ----------------------------------------------------------------------------------


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def test_the_bundled_ffmpeg_passes(tmp_path: Path) -> None:
    env = {"KLING_CACHE_DIR": str(tmp_path)}  # where the proof is remembered
    assert require_ffmpeg(MediaSettings(), environ=env) == find_ffmpeg(MediaSettings(), environ=env)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing", "ffmpeg not found at"),
        (lambda d: (d / "plain").write_text("x") and d / "plain", "is not executable"),
        (lambda d: script(d / "fails", "exit 3\n"), "-version failed (exit code 3)"),
        (lambda d: script(d / "other", "echo 'hello'\n"), "does not look like ffmpeg"),
        (lambda d: script(d / "noexec", "") and (d / "noexec").write_bytes(b"\x00\x01garbage") and d / "noexec",
         "cannot be run"),
    ],
    ids=["missing", "not-executable", "fails", "not-ffmpeg", "not-a-program"],
)
def test_a_missing_or_broken_ffmpeg_is_a_config_error_naming_media_ffmpeg(tmp_path: Path, make: Any, reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ConfigError) as info:
        require_ffmpeg(MediaSettings(ffmpeg=str(path)), environ={})
    assert info.value.key == "media.ffmpeg" and reason in str(info.value), str(info.value)
    assert info.value.exit_code == 2


def test_kling_ffmpeg_is_named_when_it_chose_the_binary(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        require_ffmpeg(MediaSettings(), environ={"KLING_FFMPEG": str(tmp_path / "nope")})
    assert info.value.key == "KLING_FFMPEG"


def test_a_hanging_ffmpeg_times_out_and_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locate, "VERSION_TIMEOUT", 0.5)
    hang = script(tmp_path / "hang", "exec sleep 30\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"did not answer `-version` within 0\.5 s"):
        require_ffmpeg(MediaSettings(ffmpeg=str(hang)), environ={})
    assert time.monotonic() - started < 10


def test_a_proven_binary_is_run_once_until_it_changes(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    fake = script(tmp_path / "ff", f"echo run >> {counter}\necho 'ffmpeg version 9.9 fake'\n")
    media = MediaSettings(ffmpeg=str(fake))
    env = {"KLING_CACHE_DIR": str(tmp_path)}  # where the proof is remembered
    assert require_ffmpeg(media, environ=env) == str(fake.resolve())
    require_ffmpeg(media, environ=env)
    assert counter.read_text().count("run") == 1
    time.sleep(0.01)
    script(fake, f"echo run >> {counter}\necho 'ffmpeg version 9.9 fake'\n# changed\n")
    require_ffmpeg(media, environ=env)
    assert counter.read_text().count("run") == 2


# -- the mock's own numbers (options.latency = 1e999 used to hang) ---------------------------


@pytest.mark.parametrize("value", [math.inf, 1e999, math.nan, -1, MAX_SECONDS + 1, 10**400, True, "5"])
@pytest.mark.parametrize("name", ["latency", "retry_after"])
def test_mock_options_refuse_non_finite_and_absurd_seconds(name: str, value: Any) -> None:
    problems = request_problems({name: value})
    assert [p.path for p in problems] == [f"options.{name}"]
    with pytest.raises(ValidationError, match=f"options.{name}"):
        effective(MockOptions(), {name: value})
    with pytest.raises(ConfigError) as info:
        config_options({name: value})
    assert info.value.key == f"providers.mock.options.{name}"


def test_mock_options_accept_sane_seconds() -> None:
    assert effective(MockOptions(), {"latency": 0, "retry_after": MAX_SECONDS}).retry_after == MAX_SECONDS
    assert config_options({"latency": 2.5}).latency == 2.5


# -- from the CLI: exit 2, one message, nothing written --------------------------------------


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    return tmp_path


def test_config_check_with_a_binary_kling_toml(cwd: Path) -> None:
    (cwd / "kling.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200)))
    before = listing(cwd)
    proc = kling("config", "check", cwd=cwd)
    assert_one_error(proc, "kling.toml: is a binary file")
    assert listing(cwd) == before


def test_config_check_with_a_non_utf8_kling_toml(cwd: Path) -> None:
    (cwd / "kling.toml").write_bytes('default_provider = "m\u00f6ck"\n'.encode("latin-1"))
    proc = kling("config", "check", cwd=cwd)
    assert_one_error(proc, "kling.toml: is not UTF-8 text")


def test_config_check_with_inf_values(cwd: Path) -> None:
    (cwd / "kling.toml").write_text("[providers.mock]\ntimeout = inf\n[providers.mock.poll]\ndeadline = nan\n"
                                    "[media]\nffmpeg_timeout = 1e999\n")
    before = listing(cwd)
    proc = kling("config", "check", cwd=cwd)
    assert_one_error(proc, "kling.toml", "providers.mock.timeout: must be a finite number",
                     "providers.mock.poll.deadline: must be a finite number", "media.ffmpeg_timeout")
    assert listing(cwd) == before


def test_config_check_with_a_missing_ffmpeg(cwd: Path) -> None:
    (cwd / "kling.toml").write_text(f'[media]\nffmpeg = "{cwd / "no-such-ffmpeg"}"\n')
    before = listing(cwd)
    proc = kling("config", "check", cwd=cwd)
    assert_one_error(proc, "kling.toml", "media.ffmpeg: ffmpeg not found at")
    assert listing(cwd) == before


def test_config_check_with_an_ffmpeg_that_is_not_ffmpeg(cwd: Path) -> None:
    fake = script(cwd / "fake-ffmpeg", "exit 1\n")
    (cwd / "kling.toml").write_text(f'[media]\nffmpeg = "{fake}"\n')
    proc = kling("config", "check", cwd=cwd)
    assert_one_error(proc, "media.ffmpeg:", "-version failed")


def test_config_check_passes_and_names_the_ffmpeg(cwd: Path) -> None:
    proc = kling("config", "check", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "ffmpeg /" in proc.stdout


def test_edit_with_a_bad_config_writes_nothing(cwd: Path) -> None:
    (cwd / "kling.toml").write_text("[providers.mock.poll]\ndeadline = inf\n")
    before = listing(cwd)
    proc = kling("edit", "clip.mp4", "-p", "x", cwd=cwd)
    assert_one_error(proc, "kling.toml: providers.mock.poll.deadline: must be a finite number")
    assert listing(cwd) == before


def test_edit_with_latency_1e999_refuses_at_once(cwd: Path) -> None:
    before = listing(cwd)
    started = time.monotonic()
    proc = kling("edit", "clip.mp4", "-p", "x", "-O", "latency=1e999", "-o", "out.mp4", cwd=cwd)
    assert_one_error(proc, "options.latency")
    assert time.monotonic() - started < 60 and listing(cwd) == before


def test_config_show_prints_cancel_on_timeout(cwd: Path) -> None:
    (cwd / "kling.toml").write_text("[providers.mock]\ncancel_on_timeout = true\n")
    proc = kling("config", "show", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config"]["providers"]["mock"]["cancel_on_timeout"] is True


def test_config_check_with_an_infinite_mock_latency(cwd: Path) -> None:
    (cwd / "kling.toml").write_text("[providers.mock.options]\nlatency = inf\n")
    before = listing(cwd)
    proc = kling("config", "check", cwd=cwd)
    assert_one_error(proc, "kling.toml", "providers.mock.options.latency: expected a number of seconds from 0 to 3600")
    assert listing(cwd) == before
