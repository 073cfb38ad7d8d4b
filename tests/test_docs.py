"""Docs stay true to the code: the README's provider table, and `--help` for every command."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kling_core.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def test_readme_names_every_cli_command() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in cli.all_commands():  # the group imports a command when run: import them all
        assert f"`kling {name}" in readme, f"README does not mention `kling {name}`"


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for name, cmd in cli.all_commands().items():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert cmd.help or cmd.short_help, name


def test_readme_links_point_at_files() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to missing {target}"
