"""CLI polish from issue 13: one percentage on the bar, ^C on a fresh line, a readable dry run,
JSON errors on every --json command, `result --no-wait` exit 3, cancelling twice, warned-about
KLING_LOG / KLING_PLUGINS values, one `plugin_errors` key with plugin versions, "an image"."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import kling
from media_fixtures import sample
from rich.console import Console

from kling_core.cli.progress import JobProgress
from kling_core.contract.checks import check_references
from kling_core.contract.models import EditRequest
from kling_core.contract.status import Running
from kling_core.media import SampleMedia

__all__ = ["sample"]


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_PLUGINS", "mock")
    monkeypatch.setenv("KLING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KLING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("KLING_LOG", raising=False)
    monkeypatch.chdir(tmp_path)


def kling_process(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


# -- the progress bar -----------------------------------------------------------------------
def _bar() -> tuple[JobProgress, io.StringIO]:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=100)
    return JobProgress(tty=True, console=console), stream


def test_the_bar_shows_the_percentage_once() -> None:
    progress, _stream = _bar()
    with progress:
        progress.update(Running(job_id="j", provider="mock", progress=54.4))
        assert progress._progress is not None
        task = progress._progress.tasks[0]
        assert task.description == "running"  # the bar's own column says 54%
        assert task.completed == pytest.approx(54.4)


def test_ctrl_c_takes_the_bar_down_and_starts_a_fresh_line() -> None:
    progress, stream = _bar()
    with progress:
        progress.update(Running(job_id="j", provider="mock", progress=10))
        progress.interrupted()
        assert progress._progress is None  # no live display left to print over
        assert stream.getvalue().endswith("\n")


# -- edit --dry-run ---------------------------------------------------------------------------
def test_dry_run_prints_a_summary_unless_json(capsys: pytest.CaptureFixture[str], sample: SampleMedia) -> None:
    args = ["edit", str(sample.video), "-p", "warm it like @Image1", "--image", str(sample.images[0]),
            "--quality", "std", "--dry-run"]
    code, out, err = kling(capsys, *args)
    assert code == 0, err
    assert out.startswith("dry run on mock: no job was created\n")
    assert "  valid" in out and "true" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    code, out, err = kling(capsys, *args, "--json")
    assert code == 0, err
    assert json.loads(out)["valid"] is True


# -- --json errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["providers"], ["config", "show"], ["demo", "--dir", "d"]])
def test_json_commands_print_their_error_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 args: list[str]) -> None:
    (tmp_path / "kling.toml").write_text("default_provider = [unclosed\n")
    code, out, err = kling(capsys, *args, "--json")
    assert code == 2, err
    assert err.count("error:") == 1
    doc = json.loads(out)["error"]
    assert doc["exit_code"] == 2 and doc["type"] == "ConfigError"


# -- result --no-wait, cancel -----------------------------------------------------------------
def test_result_no_wait_on_a_pending_job_exits_3_and_cancel_twice_is_fine(
    capsys: pytest.CaptureFixture[str], sample: SampleMedia
) -> None:
    code, out, err = kling(capsys, "edit", str(sample.video), "-p", "night", "--quality", "std", "-q",
                           "--no-wait", "-O", "latency=60")
    assert code == 0, err
    job_id = out.strip()

    code, out, err = kling(capsys, "result", "mock", job_id, "-o", "out.mp4", "--no-wait")
    assert code == 3, err
    assert "not finished yet" in err and "error:" not in err and out == ""
    code, out, err = kling(capsys, "result", "mock", job_id, "-o", "out.mp4", "--no-wait", "--json")
    assert code == 3, err
    assert json.loads(out)["state"] == "queued"
    assert not Path("out.mp4").exists()

    code, out, err = kling(capsys, "cancel", "mock", job_id)
    assert code == 0, err
    code, out, err = kling(capsys, "cancel", "mock", job_id)
    assert code == 0, err
    assert "already cancelled" in out and "may have finished" not in out + err

    # A cancelled job has finished: --no-wait says so as waiting would (exit 1), not exit 3.
    code, out, err = kling(capsys, "result", "mock", job_id, "-o", "out.mp4", "--no-wait")
    assert code == 1, err
    assert "cancelled" in err


def test_result_help_documents_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = kling(capsys, "result", "--help")
    assert code == 0
    assert "3 with --no-wait" in " ".join(out.split())


# -- environment variables --------------------------------------------------------------------
def test_an_unknown_kling_log_level_is_warned_about(tmp_path: Path) -> None:
    proc = kling_process("schema", cwd=tmp_path, env={"KLING_LOG": "verbose", "KLING_PLUGINS": "mock"})
    assert proc.returncode == 0, proc.stderr
    assert "warning: KLING_LOG='verbose' is not one of debug, info, warning, error" in proc.stderr


def test_an_unknown_plugin_in_kling_plugins_is_warned_about(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_PLUGINS", "mock,nosuch")
    code, _out, err = kling(capsys, "providers")
    assert code == 0, err
    assert "warning: KLING_PLUGINS names 'nosuch', which no installed plugin provides" in err
    assert "mock" in err.split("installed:")[1]


# -- plugins / providers JSON -------------------------------------------------------------------
def test_plugins_and_providers_share_plugin_errors_and_show_versions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = kling(capsys, "plugins", "--json")
    assert code == 0, err
    plugins: dict[str, Any] = json.loads(out)
    assert plugins["plugin_errors"] == [] and "failures" not in plugins
    mock = next(p for p in plugins["plugins"] if p["name"] == "mock")
    assert mock["distribution"] and mock["version"]

    code, out, err = kling(capsys, "providers", "--json")
    assert code == 0, err
    providers: dict[str, Any] = json.loads(out)
    assert providers["plugin_errors"] == []
    info = next(p for p in providers["providers"] if p["name"] == "mock")
    assert info["plugin"] == {"name": "mock", "distribution": mock["distribution"], "version": mock["version"]}

    code, out, err = kling(capsys, "plugins")
    assert f"mock (from {mock['distribution']} {mock['version']}): " in out


def test_a_plugin_error_has_the_same_shape_in_both_commands(capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from kling_core import hookimpl
    from kling_core.plugins import PluginHost

    class Typo:
        @hookimpl
        def kling_register_provider(self, register: Any) -> None: ...

    real = PluginHost.__init__

    def with_typo(self: PluginHost, **kwargs: Any) -> None:
        real(self, **kwargs)
        self.register(Typo(), "typo", distribution="typo-dist", version="1.2")

    monkeypatch.setattr(PluginHost, "__init__", with_typo)
    code, out, _err = kling(capsys, "plugins", "--json")
    assert code == 1
    from_plugins = json.loads(out)["plugin_errors"]
    code, out, _err = kling(capsys, "providers", "--json")
    assert code == 0
    from_providers = json.loads(out)["plugin_errors"]
    assert from_plugins == from_providers
    assert from_plugins[0]["name"] == "typo" and from_plugins[0]["distribution"] == "typo-dist"
    assert from_plugins[0]["version"] == "1.2" and "(from typo-dist 1.2)" in from_plugins[0]["message"]


# -- wording ------------------------------------------------------------------------------------
def test_a_reference_to_a_missing_image_says_an_image() -> None:
    request = EditRequest(video="clip.mp4", prompt="put @Image2 and @Element1 in")
    messages = [p.message for p in check_references(request)]
    assert any("@Image2 refers to an image the request" in m for m in messages), messages
    assert any("@Element1 refers to an element the request" in m for m in messages), messages
