"""``kling completion bash|zsh|fish``: the shell completion script (click's), and the completers
that give it provider and schema names (models, qualities and modes are choices already)."""

from __future__ import annotations

import os

import click
from click.shell_completion import CompletionItem, get_completion_class

from kling_core.cli.common import State

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_KLING_COMPLETE"


def complete_providers(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Installed providers (the plugins' included) whose name starts with ``incomplete``."""
    try:
        providers = State.plugin_host().providers
    except Exception:  # completing must never print a traceback into the shell
        return []
    names = sorted({cls.name for cls in providers.values()})
    return [CompletionItem(n, help=providers[n].title) for n in names if n.startswith(incomplete)]


def complete_schemas(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from kling_core.schema_store import schema_names

    return [CompletionItem(n) for n in schema_names() if n.startswith(incomplete)]


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS), required=False)
def command(shell: str | None) -> None:
    """Print the shell completion script for SHELL (default: the one $SHELL names).

    It completes commands, options, choices (models, qualities, modes), installed provider
    names and schema names. Install it once:

    \b
      bash: echo 'eval "$(kling completion bash)"' >> ~/.bashrc
      zsh:  echo 'eval "$(kling completion zsh)"' >> ~/.zshrc
      fish: kling completion fish > ~/.config/fish/completions/kling.fish
    """
    if shell is None:
        shell = os.path.basename(os.environ.get("SHELL", ""))
        if shell not in SHELLS:
            raise click.UsageError(f"name the shell: one of {', '.join(SHELLS)} ($SHELL is {shell or 'not set'!r})")
    root = click.get_current_context().find_root().command
    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS has one
    click.echo(cls(root, {}, "kling", COMPLETE_VAR).source())
