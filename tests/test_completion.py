"""Shell completion: `kling completion bash|zsh|fish` prints the script; it completes commands,
choices (models), installed providers (the plugins' included) and schema names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete

from kling_core.cli import cli, main
from kling_core.cli.common import State


def complete(*words: str, incomplete: str = "") -> list[str]:
    comp = ShellComplete(cli, {}, "kling", "_KLING_COMPLETE")
    return [item.value for item in comp.get_completions(list(words), incomplete)]


def providers() -> list[str]:
    return sorted({cls.name for cls in State.plugin_host().providers.values()})


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o nosort -F _kling_completion kling"),
    ("zsh", "#compdef kling"),
    ("fish", "complete --no-files --command kling"),
])
def test_the_script_for_each_shell(shell: str, marker: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["completion", shell])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert marker in out and "_KLING_COMPLETE" in out


def test_the_shell_comes_from_SHELL(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    with pytest.raises(SystemExit):
        main(["completion"])
    assert "#compdef kling" in capsys.readouterr().out
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    with pytest.raises(SystemExit) as info:
        main(["completion"])
    assert info.value.code == 2 and "name the shell" in capsys.readouterr().err


def test_provider_names_complete_wherever_a_provider_is_named() -> None:
    names = providers()
    assert {"mock", "fal", "segmind", "unifically", "kling"} <= set(names)
    assert complete("edit", "clip.mp4", "--provider") == names
    assert complete("edit", "clip.mp4", "--provider", incomplete="f") == [n for n in names if n.startswith("f")]
    for command in ("status", "result", "cancel"):
        assert complete(command, incomplete="s") == [n for n in names if n.startswith("s")]
    assert complete("jobs", "--provider", incomplete="m") == [n for n in names if n.startswith("m")]
    assert complete("contract", "mock", incomplete="u") == [n for n in names if n.startswith("u")]


def test_models_commands_and_schemas_complete() -> None:
    assert complete("edit", "clip.mp4", "--model") == ["kling-o1", "kling-o3"]
    assert complete("edit", "clip.mp4", "--quality") == ["std", "pro"]
    assert "completion" in complete(incomplete="comp")
    assert complete("schema", incomplete="job") == ["job-status"]
    assert "providers/fal-queue-status" in complete("schema", incomplete="providers/fal")


def test_the_installed_script_answers_the_shell(tmp_path: Path) -> None:
    # What bash runs on <TAB>: the `kling` command itself, with the completion variables set.
    env = {**os.environ, "_KLING_COMPLETE": "bash_complete", "COMP_WORDS": "kling edit clip.mp4 --provider f",
           "COMP_CWORD": "4", "KLING_PLUGINS": "mock,fal"}
    proc = subprocess.run([sys.executable, "-c", "from kling_core.cli import main; main()"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["plain,fal"]
