"""The ``kling`` command: a thin layer over :mod:`kling_core.client`.

Expected errors print one line (or one list) on stderr and exit with the error's code (2 for
bad input, config or media; 1 for the remote side); no traceback unless KLING_LOG=debug.

Start-up is kept short: the group knows each command's module and summary from a table, so
``kling --help`` imports no command module, and ``kling edit`` imports only the edit command's.
Plugins add commands through the ``kling.hooks`` entry-point group (see docs/plugin-tutorial.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from typing import Any

import click

from kling_core import __version__
from kling_core.cli.common import State, fail
from kling_core.errors import KlingError
from kling_core.logs import configure_logging

# Commands living in their own modules; each exports a click command named `command` (or a
# list named `commands`). A module that does not exist (yet) is skipped.
_COMMAND_MODULES = (
    "kling_core.cli.info_cmd",
    "kling_core.cli.job_cmd",
    "kling_core.cli.jobs_cmd",
    "kling_core.cli.demo_cmd",
    "kling_core.cli.contract_cmd",
    "kling_core.cli.completion_cmd",
    "kling_core.cli.emulate_cmd",
    "kling_core.cli.compare_cmd",
    "kling_core.cli.keys_cmd",
    "kling_core.cli.batch_cmd",
    "kling_core.cli.webhooks_cmd",
)

# Command name -> (its module, the first paragraph of its help), so `kling --help` lists every
# command without importing one. tests/test_start_up.py keeps each summary equal to the
# command's own help and the table equal to what the modules export.
COMMAND_TABLE: dict[str, tuple[str, str]] = {
    "providers": ("kling_core.cli.info_cmd", "List providers, their models and capabilities, the plugin (and its "
                  "version) each comes from, and whether their keys are set."),
    "plugins": ("kling_core.cli.info_cmd", "List loaded plugins, the distribution and version each comes from and "
                "the hooks it implements; report plugins that failed to load (and exit 1 if any did)."),
    "schema": ("kling_core.cli.info_cmd", "Print a JSON Schema: edit-request, job-status, edit-result, config, "
               "cassette, providers/…"),
    "config": ("kling_core.cli.info_cmd", "Check or show the config in effect."),
    "edit": ("kling_core.cli.job_cmd", "Edit VIDEO (a local path or an http(s) URL) as the prompt says; write the "
             "output .mp4."),
    "status": ("kling_core.cli.job_cmd", "Show the state of a job by its id."),
    "result": ("kling_core.cli.job_cmd", "Fetch a job's output video (waiting for it unless --no-wait)."),
    "cancel": ("kling_core.cli.job_cmd", "Ask the host to cancel a job (where it can)."),
    "jobs": ("kling_core.cli.jobs_cmd", "List the jobs in the job log, newest first; `kling jobs "
             "show|resume|forget` act on one."),
    "cache": ("kling_core.cli.jobs_cmd", "Manage $KLING_CACHE_DIR: the mock's renders and cached downloads."),
    "demo": ("kling_core.cli.demo_cmd", "Make a sample clip (motion + tone) and two images, then edit them with "
             "the offline mock."),
    "contract": ("kling_core.cli.contract_cmd", "Run the contract suite against installed providers (all when none "
                 "is named)."),
    "completion": ("kling_core.cli.completion_cmd", "Print the shell completion script for SHELL (default: the one "
                   "$SHELL names)."),
    "emulate": ("kling_core.cli.emulate_cmd", "Serve the hosts' own APIs on one local port, rendering with the "
                "mock."),
    "compare": ("kling_core.cli.compare_cmd", "Write a PNG contact sheet: INPUT's frames on the top row, OUTPUT's "
                "below, at the same times."),
    "keys": ("kling_core.cli.keys_cmd", "List each installed provider's credentials: whether each is set and where "
             "it comes from (env:VARIABLE or keyring:SERVICE/NAME, or \"not set\"). Values are never printed."),
    "batch": ("kling_core.cli.batch_cmd", "Run every edit of MANIFEST: a JSONL or CSV file, one edit per line with "
              "`kling edit`'s fields (video, prompt, images, elements, keep_audio, quality, model, edit_mode, "
              "aspect_ratio, duration, provider, output, options, client_key, webhook_url)."),
    "webhooks": ("kling_core.cli.webhooks_cmd", "Receive host callbacks: verified, matched to the job log, confirmed "
                 "by a status look-up."),
}

CONFIG_HELP = ("Config file, instead of the nearest kling.toml or [tool.kling] in pyproject.toml from here up to "
               "the project root (layered over the user config; see `kling config show`). Also after the subcommand.")


def _module_exists(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


class LazyGroup(click.Group):
    """A click group whose built-in commands are imported when run, and whose plugin commands
    are added on first need (listing the commands, or a name no built-in command has)."""

    # -- built-in commands ----------------------------------------------------------
    def _load_module(self, module_name: str) -> None:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a command module not written yet
                return
            raise
        for cmd in getattr(module, "commands", None) or [module.command]:
            if cmd.name not in self.commands:  # a plugin's command of the same name was added first
                self.add_command(cmd)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(cmd, name)
        accept_config(cmd)

    def builtin_names(self) -> list[str]:
        """The built-in commands whose module exists (a module not written yet lists nothing)."""
        modules = {module for module, _ in COMMAND_TABLE.values()}
        present = {module for module in modules if _module_exists(module)}
        return sorted(name for name, (module, _) in COMMAND_TABLE.items() if module in present)

    def all_commands(self) -> dict[str, click.Command]:
        """Every command, built-in and plugins', imported (for tests and documentation checks)."""
        for module in _COMMAND_MODULES:
            self._load_module(module)
        self._add_plugin_commands(everyone=True)
        return dict(sorted(self.commands.items()))

    # -- plugins' commands ------------------------------------------------------------
    def forget_plugins(self) -> None:
        """A new invocation (``main`` called again in one process): a new host, asked again."""
        State.forget_plugin_host()

    def _add_plugin_commands(self, *, everyone: bool = False) -> None:
        """Call ``kling_register_commands`` on the ``kling.hooks`` plugins, or (``everyone``) on
        every installed plugin: the fallback for a plugin that adds commands without declaring so.
        The host calls each plugin once (``call_once``), however often this is asked."""
        host = State.plugin_host()
        if everyone:
            host.load_all()
        host.call_once("kling_register_commands", cli=self)

    # -- click's interface ------------------------------------------------------------
    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return sorted({*self.builtin_names(), *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = COMMAND_TABLE.get(cmd_name)
        if entry is not None:
            self._load_module(entry[0])
        if cmd_name not in self.commands:
            self._add_plugin_commands()
        if cmd_name not in self.commands:
            self._add_plugin_commands(everyone=True)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the table's summary for a command not imported."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None:
                cmd = click.Command(name, help=COMMAND_TABLE[name][1])
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kling")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Edit videos with the Kling O1/O3 edit models on any host, through one contract.

    Providers: run `kling providers`. With no config the default provider is the offline
    mock, which renders real clips locally with ffmpeg. KLING_LOG=debug logs every request
    (secrets redacted); KLING_PLUGINS=mock,fal limits which plugins load (an unknown level or
    plugin name is warned about).

    Exit codes: 0 done; 1 the host or the job failed; 2 bad input, config or media; 3 `kling
    result --no-wait` on a job not finished yet; 130 interrupted.
    """
    ctx.obj = State(config_path=config_path)


def _late_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--config`` given after a subcommand: the same setting as before it."""
    if value is None:
        return
    state = ctx.find_object(State)
    if state is None:  # a command invoked on its own, outside the `kling` group
        state = ctx.ensure_object(State)
    if state.config_path is not None and state.config_path != value:
        raise click.UsageError(f"--config given twice ({state.config_path} and {value}); give it once", ctx=ctx)
    state.config_path = value


def accept_config(command: click.Command) -> None:
    """Give a subcommand (and its nested ones, plugins' included) the group's ``--config`` option."""
    if not any("--config" in getattr(p, "opts", ()) for p in command.params):
        command.params.append(click.Option(
            ["--config", "late_config"], type=click.Path(dir_okay=False), default=None, expose_value=False,
            callback=_late_config, help=CONFIG_HELP,
        ))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_config(sub)


def accept_config_everywhere(group: click.Group) -> None:
    """Give every subcommand loaded so far the group's ``--config`` option."""
    for command in group.commands.values():
        accept_config(command)


def _print_file_names_as_given() -> None:
    """A file name that is not UTF-8 reaches Python as surrogate escapes; write it back as the
    bytes it was (what ``ls`` shows) instead of failing after the work is done, whatever the
    locale's error handler (strict under e.g. en_US.UTF-8)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="surrogateescape")


def main(argv: list[str] | None = None) -> None:
    # Called without arguments: the process's entry point (the `kling` script, python -m
    # kling_core), which ends with the command (see State.settled).
    State.whole_process = argv is None
    if State.whole_process:
        _print_file_names_as_given()
    configure_logging()
    cli.forget_plugins()
    try:
        rv: Any = cli.main(args=argv, prog_name="kling", standalone_mode=False)
    except KlingError as exc:
        fail(exc)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: say so briefly; the traceback is in the debug log
        logging.getLogger("kling_core").debug("unexpected error", exc_info=True)
        click.echo(f"error: unexpected {type(exc).__name__}: {exc} (rerun with KLING_LOG=debug for details)", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
