"""Where the config comes from: the nearest project config from the working directory up to the
project root, layered over a user-level config; `kling config show` names the files; a
kling.toml shadowing [tool.kling] is warned about; `--config` is accepted after the subcommand."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import kling

from kling_core.config import ConfigFile, ConfigWarning, find_config, load_config, user_config_file
from kling_core.errors import ConfigError


def show(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = kling(capsys, "config", "show", "--json", *args)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository: .git at its root, [tool.kling] in its pyproject.toml, and sub-folders."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.kling]\ndefault_provider = "fal"\n')
    (root / "src" / "deep").mkdir(parents=True)
    return root


def test_found_from_a_sub_folder(project: Path) -> None:
    cfg = load_config(cwd=project / "src" / "deep")
    assert cfg.default_provider == "fal"
    assert cfg.files == (ConfigFile(str(project / "pyproject.toml"), "tool.kling", "project"),)
    assert find_config(project / "src") == (project / "pyproject.toml", "tool.kling")


def test_the_nearest_wins(project: Path) -> None:
    (project / "src" / "kling.toml").write_text('default_provider = "segmind"\n')
    assert load_config(cwd=project / "src" / "deep").default_provider == "segmind"
    assert load_config(cwd=project).default_provider == "fal"


def test_a_pyproject_without_the_table_is_passed_over(project: Path) -> None:
    (project / "src" / "pyproject.toml").write_text('[project]\nname = "sub"\n')
    assert load_config(cwd=project / "src" / "deep").default_provider == "fal"


def test_the_search_stops_at_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "kling.toml").write_text('default_provider = "fal"\n')  # above the repository
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    cfg = load_config(cwd=repo / "sub")
    assert cfg.default_provider == "mock" and cfg.files == () and cfg.source is None
    # ... while outside any repository the search goes on up.
    (tmp_path / "plain").mkdir()
    assert load_config(cwd=tmp_path / "plain").default_provider == "fal"


def test_a_kling_toml_shadowing_tool_kling_is_warned_about(project: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "kling.toml").write_text('default_provider = "unifically"\n')
    with pytest.warns(ConfigWarning, match=r"kling\.toml shadows .*pyproject\.toml \[tool\.kling\]"):
        cfg = load_config(cwd=project / "src")
    assert cfg.default_provider == "unifically"
    assert cfg.shadowed == (ConfigFile(str(project / "pyproject.toml"), "tool.kling"),)
    monkeypatch.chdir(project / "src")
    doc = show(capsys)
    assert doc["shadowed"] == [{"path": str(project / "pyproject.toml"), "table": "tool.kling"}]
    code, out, err = kling(capsys, "config", "show")
    assert code == 0
    assert "shadowed (not read): " + str(project / "pyproject.toml") + " [tool.kling]" in out
    assert err.count("warning: ") == 1 and "shadows" in err


def test_no_warning_without_a_table_beside_it(project: Path) -> None:
    (project / "src" / "kling.toml").write_text('default_provider = "mock"\n')
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_config(cwd=project / "src").shadowed == ()


def test_the_user_config_is_layered_under_the_project(project: Path) -> None:
    user = user_config_file()
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text('default_provider = "segmind"\n[defaults]\nquality = "std"\nkeep_audio = true\n'
                    '[providers.fal]\nkey = "env:MY_FAL"\ntimeout = 12.0\n')
    (project / "kling.toml").write_text('[defaults]\nkeep_audio = false\n'
                                        '[providers.fal.credentials]\nkey = "env:TEAM_FAL"\n')
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    cfg = load_config(cwd=project / "src")
    assert [f.scope for f in cfg.files] == ["user", "project"]
    assert cfg.default_provider == "segmind"  # only the user config says it
    assert (cfg.defaults.quality, cfg.defaults.keep_audio) == ("std", False)  # tables merge; the project wins
    fal = cfg.provider_settings("fal")
    assert fal.credentials == {"key": "env:TEAM_FAL"} and fal.timeout == 12.0
    assert cfg.source == f"{user} + {project / 'kling.toml'}"
    # Only the user config outside any project.
    alone = load_config(cwd=project.parent)
    assert [f.scope for f in alone.files] == ["user"] and alone.default_provider == "segmind"
    assert load_config(cwd=project / "src", user=False).default_provider == "mock"


def test_an_error_in_the_user_config_names_it(project: Path) -> None:
    user = user_config_file()
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text("[defaults]\nquality = 'ultra'\n")
    with pytest.raises(ConfigError) as info:
        load_config(cwd=project)
    assert str(user) in str(info.value) and "defaults.quality" in str(info.value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG folders are Linux's")
def test_the_user_config_lives_in_the_platform_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KLING_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_config_file() == tmp_path / "xdg" / "kling" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_config_file() == tmp_path / "home" / ".config" / "kling" / "config.toml"


def test_an_explicit_file_replaces_the_search(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "other.toml").write_text('default_provider = "kling"\n')
    cfg = load_config(project / "other.toml", cwd=project / "src")
    assert cfg.default_provider == "kling" and [f.scope for f in cfg.files] == ["explicit"]
    monkeypatch.setenv("KLING_CONFIG", str(project / "pyproject.toml"))  # the table is read from a pyproject
    assert load_config(cwd=project.parent).default_provider == "fal"
    assert find_config(project.parent) == (project / "pyproject.toml", "tool.kling")


def test_config_show_names_the_files(project: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "src" / "deep")
    doc = show(capsys)
    assert doc["files"] == [{"path": str(project / "pyproject.toml"), "table": "tool.kling", "scope": "project"}]
    assert doc["config"]["default_provider"] == "fal" and doc["user_config"] == str(user_config_file())
    code, out, _err = kling(capsys, "config", "show")
    assert code == 0
    assert out.splitlines()[:2] == ["files in effect (later ones override earlier ones):",
                                    f"  project:  {project / 'pyproject.toml'} [tool.kling]"]
    monkeypatch.chdir(project.parent)
    code, out, _err = kling(capsys, "config", "show")
    assert out.startswith("files in effect: none (defaults; the user config would be ")


@pytest.mark.parametrize("where", ["before", "after", "group"])
def test_config_is_accepted_before_or_after_the_subcommand(where: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.toml").write_text('default_provider = "fal"\n')
    args = {"before": ["--config", "x.toml", "config", "show", "--json"],
            "after": ["config", "show", "--json", "--config", "x.toml"],
            "group": ["config", "--config", "x.toml", "show", "--json"]}[where]
    code, out, err = kling(capsys, *args)
    assert code == 0, err
    assert json.loads(out)["config"]["default_provider"] == "fal"


def test_edit_reads_a_config_given_after_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.toml").write_text('default_provider = "nosuch"\n')
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    code, _out, err = kling(capsys, "edit", "--config", "x.toml", "clip.mp4", "-p", "x", "-o", "out.mp4")
    assert code == 2 and "nosuch" in err
    code, _out, err = kling(capsys, "edit", "clip.mp4", "-p", "x", "-o", "out.mp4", "--config", "missing.toml")
    assert code == 2 and "missing.toml" in err and "not found" in err


def test_config_given_twice_differently_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _out, err = kling(capsys, "--config", "a.toml", "providers", "--config", "b.toml")
    assert code == 2 and "--config given twice" in err
    (tmp_path / "a.toml").write_text("")
    code, _out, err = kling(capsys, "--config", "a.toml", "providers", "--config", "a.toml")
    assert code == 0, err


def test_every_command_takes_config() -> None:
    import click

    from kling_core.cli import cli

    def walk(group: click.Group, prefix: str) -> list[str]:
        missing = []
        for name, cmd in group.commands.items():
            if not any("--config" in getattr(p, "opts", ()) for p in cmd.params):
                missing.append(prefix + name)
            if isinstance(cmd, click.Group):
                missing += walk(cmd, f"{prefix}{name} ")
        return missing

    cli.all_commands()  # the group imports a command when run: import them all
    assert walk(cli, "") == []
