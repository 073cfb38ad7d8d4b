"""``kling keys``: which credentials are set and where each comes from, never a value."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from kling_core.cli.common import State
from kling_core.cli.job_cmd import json_errors
from kling_core.settings import credential_status

pass_state = click.make_pass_decorator(State)


def key_rows(state: State) -> list[dict[str, Any]]:
    """One row per installed provider and credential: set or not, and its source."""
    rows = []
    for name, cls in state.host.providers.items():
        if name != cls.name:  # an alias
            continue
        settings = state.config.provider_settings(cls.name)
        for i, spec in enumerate(cls.credentials):
            rows.append(credential_status(cls.name, spec, settings, os.environ, first=i == 0))
    return rows


@click.command("keys")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"keys": [{"provider", "credential", "reference", "set", "source"}, ...]} as JSON.')
@pass_state
@json_errors
def command(state: State, as_json: bool) -> None:
    """List each installed provider's credentials: whether each is set and where it comes from
    (env:VARIABLE or keyring:SERVICE/NAME, or "not set"). Values are never printed."""
    rows = key_rows(state)
    if as_json:
        click.echo(json.dumps({"keys": rows}, indent=2))
        return
    if not rows:
        click.echo("no installed provider needs a key")
    for row in rows:
        where = row["source"] if row["set"] else f"not set ({row['reference']})"
        problem = f": {row['error']}" if row.get("error") else ""
        click.echo(f"{row['provider']}.{row['credential']}: {where}{problem}")
