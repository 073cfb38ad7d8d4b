"""The ``kling`` command: a thin layer over :mod:`kling_core.client`.

Expected errors print one line (or one list) on stderr and exit with the error's code (2 for
bad input, config or media; 1 for the remote side); no traceback unless KLING_LOG=debug.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from kling_core import __version__
from kling_core.cli.common import State, fail
from kling_core.errors import KlingError
from kling_core.logs import configure_logging

# Commands living in their own modules; each exports a click command named `command`.
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


CONFIG_HELP = ("Config file, instead of the nearest kling.toml or [tool.kling] in pyproject.toml from here up to "
               "the project root (layered over the user config; see `kling config show`). Also after the subcommand.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def accept_config_everywhere(group: click.Group) -> None:
    """Give every subcommand (nested ones and plugins' included) the group's ``--config`` option."""
    for command in group.commands.values():
        if not any("--config" in getattr(p, "opts", ()) for p in command.params):
            command.params.append(click.Option(
                ["--config", "late_config"], type=click.Path(dir_okay=False), default=None, expose_value=False,
                callback=_late_config, help=CONFIG_HELP,
            ))
        if isinstance(command, click.Group):
            accept_config_everywhere(command)


def _load_commands() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        for cmd in getattr(module, "commands", None) or [module.command]:
            cli.add_command(cmd)


def _register_plugin_commands() -> None:
    # Plugins add their own commands; a broken plugin is reported by `State.host`, not here.
    State.plugin_host(fresh=True).pm.hook.kling_register_commands(cli=cli)


_load_commands()
accept_config_everywhere(cli)


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    try:
        _register_plugin_commands()
        accept_config_everywhere(cli)  # the plugins' commands too
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
