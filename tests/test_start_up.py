"""A quick start: what `kling --help`, a mock edit and the pytest plugin import, and that the
mock probes its input once. Behaviour only: the times are benchmarks/bench_startup.py's and
benchmarks/bench_mock_edit.py's to measure."""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import click
import pytest
from media_fixtures import sample

from kling_core.cli import _COMMAND_MODULES, COMMAND_TABLE, cli, main
from kling_core.client import AsyncEditClient
from kling_core.config import KlingConfig
from kling_core.media import SampleMedia
from kling_core.plugins import HOOKS_GROUP, PluginHost
from kling_core.settings import MediaSettings

__all__ = ["sample"]

# Runs `kling ARGS` in a fresh interpreter, then writes the names of every module it imported.
RUNNER = textwrap.dedent("""
    import json, sys
    from kling_core.cli import main
    try:
        main(sys.argv[2:])
    finally:
        with open(sys.argv[1], "w") as out:
            json.dump(sorted(sys.modules), out)
""")
# The HTTP machinery a local edit must not load. kling_core.http.download (the result saver,
# which also copies the mock's render) and its package stub may load; nothing that speaks HTTP.
HTTP_MODULES = ("httpx", "httpcore", "h11", "kling_core.http.base", "kling_core.http.auth",
                "kling_core.http.retry", "kling_core.http.errormap", "kling_core.media.fetch")


def imported_by(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(out), *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, **(env or {})}, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(out.read_text())), proc.stdout


def loaded(modules: set[str], prefix: str) -> list[str]:
    return sorted(m for m in modules if m == prefix or m.startswith(prefix + "."))


def test_help_imports_no_command_module_no_plugin_and_no_http(tmp_path: Path) -> None:
    modules, out = imported_by(["--help"], tmp_path)
    for name in ("edit", "providers", "contract", "emulate"):
        assert f"  {name} " in out, out
    assert [m for m in modules if m.startswith("kling_core.cli.") and m.endswith("_cmd")] == []
    assert loaded(modules, "kling_core_plugins") == []
    assert [m for m in HTTP_MODULES if m in modules] == []
    assert loaded(modules, "kling_core.http") == []
    assert loaded(modules, "kling_core.client") == [] and loaded(modules, "rich") == []


@pytest.mark.ffmpeg
def test_a_mock_edit_loads_no_http_machinery_and_no_other_provider(tmp_path: Path, sample: SampleMedia) -> None:
    out = tmp_path / "out.mp4"
    modules, _ = imported_by(["edit", str(sample.video), "--prompt", "warmer, with @Image1", "--image",
                              str(sample.images[0]), "--quality", "std", "--provider", "mock", "--quiet",
                              "--output", str(out)], tmp_path)
    assert out.is_file()
    assert [m for m in HTTP_MODULES if m in modules] == []
    assert loaded(modules, "kling_core.http") in ([], ["kling_core.http", "kling_core.http.download"])
    plugins = {m.split(".")[1] for m in loaded(modules, "kling_core_plugins") if m.count(".") >= 1}
    assert plugins == {"mock"}
    assert loaded(modules, "rich") == []  # --quiet: no progress bar
    assert "kling_core.cli.job_cmd" in modules and "kling_core.cli.info_cmd" not in modules


def test_the_pytest_entry_point_imports_none_of_the_kit(tmp_path: Path) -> None:
    entry = next(ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "kling")
    assert entry.value == "kling_core.pytest_entry"
    code = f"import json, sys; import {entry.value}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    modules = set(json.loads(proc.stdout))
    assert loaded(modules, "kling_core.testing") == []
    assert [m for m in ("httpx", "respx", "hypothesis", "kling_core.client", "kling_core.provider") if m in modules] == []


def test_pytest_still_lists_the_kit_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", "-p", "no:randomly",
                           str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    for name in ("kling_sample_media", "kling_provider_factory", "kling_call_log", "kling_cassettes",
                 "kling_emulator", "kling_mock_client"):
        assert name in proc.stdout, proc.stdout[-2000:]


# -- the command table ----------------------------------------------------------------------------
def _exported() -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        for cmd in getattr(module, "commands", None) or [module.command]:
            out[cmd.name or ""] = cmd
    return out


def _summary(cmd: click.Command) -> str:
    return " ".join((cmd.help or "").split("\n\n")[0].split())


def test_the_command_table_names_every_command_with_its_own_summary() -> None:
    exported = _exported()
    present = {name for name, (module, _) in COMMAND_TABLE.items() if importlib.util.find_spec(module) is not None}
    assert set(exported) == present, "COMMAND_TABLE in kling_core/cli/__init__.py lists each command once"
    for name, cmd in exported.items():
        module, summary = COMMAND_TABLE[name]
        assert cmd.callback is not None and cmd.callback.__module__ == module, name
        assert summary == _summary(cmd), f"COMMAND_TABLE[{name!r}] summary: put {_summary(cmd)!r}"
        stub = click.Command(name, help=summary)
        for width in (30, 45, 80):
            assert stub.get_short_help_str(width) == cmd.get_short_help_str(width), name


def test_help_lists_what_the_loaded_commands_would(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    lazy = capsys.readouterr().out
    cli.all_commands()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out == lazy


# -- plugins --------------------------------------------------------------------------------------
def test_a_provider_by_name_loads_only_its_plugin() -> None:
    host = PluginHost(environ={})
    assert host.provider_class("mock").name == "mock"
    assert [name for name, _ in host.pm.list_name_plugin()] == ["mock"]
    assert "fal" in host.providers  # a listing loads every plugin
    assert len(host.plugin_names()) > 1


PLUGIN_SOURCE = textwrap.dedent("""
    import click
    from kling_core.sdk import hookimpl

    @click.command("{command}")
    def hello() -> None:
        '''Say hello from a plugin.'''
        click.echo("hello from {command}")

    @hookimpl
    def kling_register_commands(cli):
        cli.add_command(hello)
""")


@pytest.fixture
def own_commands() -> Any:
    """Plugin commands added in a test leave the process-wide `kling` group afterwards."""
    before = dict(cli.commands)
    yield
    cli.commands.clear()
    cli.commands.update(before)
    cli.forget_plugins()


def _plugin_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, groups: dict[str, list[str]]) -> None:
    """Plugin modules named after their command, offered in the given entry-point groups."""
    for names in groups.values():
        for name in names:
            (tmp_path / f"{name}.py").write_text(PLUGIN_SOURCE.format(command=name.replace("_", "-")))
    monkeypatch.syspath_prepend(str(tmp_path))
    real = importlib.metadata.entry_points

    def entry_points(**kw: Any) -> Any:
        group = kw.get("group")
        if group in groups:
            return [importlib.metadata.EntryPoint(name=n, value=n, group=group) for n in groups[group]]
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


@pytest.mark.usefixtures("own_commands")
def test_a_plugin_in_the_hooks_group_adds_a_listed_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _plugin_entry_points(monkeypatch, tmp_path, {"kling": ["mock"], HOOKS_GROUP: ["kling_hooked_cmd"]})
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "kling-hooked-cmd  Say hello from a plugin." in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["kling-hooked-cmd"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == "hello from kling-hooked-cmd\n"


@pytest.mark.usefixtures("own_commands")
def test_an_undeclared_plugin_command_still_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _plugin_entry_points(monkeypatch, tmp_path, {"kling": ["kling_plain_cmd"]})
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "kling-plain-cmd" not in capsys.readouterr().out  # not declared in kling.hooks: not imported
    with pytest.raises(SystemExit) as exit_info:
        main(["kling-plain-cmd", "--config", str(tmp_path / "none.toml")])
    assert exit_info.value.code == 0 and capsys.readouterr().out == "hello from kling-plain-cmd\n"


# -- the mock probes once -------------------------------------------------------------------------
@pytest.mark.ffmpeg
def test_the_mock_probes_its_input_once_per_job(sample: SampleMedia, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from kling_core_plugins.mock import media_check

    calls: list[str] = []
    real_video, real_image = media_check.probe_video, media_check.probe_image

    def probe_video(path: Any, field: str, **kw: Any) -> Any:
        calls.append(field)
        return real_video(path, field, **kw)

    def probe_image(path: Any, field: str, **kw: Any) -> Any:
        calls.append(field)
        return real_image(path, field, **kw)

    monkeypatch.setattr(media_check, "probe_video", probe_video)
    monkeypatch.setattr(media_check, "probe_image", probe_image)
    config = KlingConfig(default_provider="mock", media=MediaSettings(work_dir=str(tmp_path / "work")))

    async def run() -> None:
        async with AsyncEditClient(config=config, use_journal=False) as client:
            request = client.request(str(sample.video), "cooler, with @Image1", images=[str(sample.images[0])],
                                     quality="std")
            await client.edit(request, output=tmp_path / "out.mp4")
            assert calls == ["video", "images[0]"]  # prepare probed; submit and the render reused it
            calls.clear()
            os.utime(sample.images[0])  # a changed file is probed again
            await client.edit(request, output=tmp_path / "again.mp4")
            assert calls == ["video", "images[0]"]

    asyncio.run(run())


@pytest.mark.parametrize("module", ["kling_core", "kling_core.sdk", "kling_core.http", "kling_core.media"])
def test_every_lazily_loaded_name_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == [], f"{module}: add these to its map of lazily loaded names"
