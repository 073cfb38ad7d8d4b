"""``kling emulate``: serve the hosts' own APIs on loopback, backed by the mock (docs/emulator.md).

Nothing heavy is imported until the command runs, so ``kling --help`` works without the
``emulator`` extra.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kling_core.emulator.hosts import HOSTS
from kling_core.errors import ConfigError

RENDER_CHOICES = ("full", "fast", "sample")


def _fail_option(values: tuple[str, ...]) -> dict[str, str]:
    from kling_core.emulator.settings import unknown_host

    out: dict[str, str] = {}
    for value in values:
        host, sep, name = value.partition("=")
        if not sep or not host.strip() or not name.strip():
            raise ConfigError(f"--fail takes HOST=FAILURE, got {value!r}", key="fail")
        host = host.strip().lower()
        if (why := unknown_host(host)) is not None:
            raise ConfigError(why, key="fail")
        out[host] = name.strip()
    return out


# The help names the emulated hosts from the host table, so it cannot drift; its first
# paragraph is also `kling --help`'s summary (kling_core/cli/__init__.py), which imports no host.
HELP = f"""Serve the hosts' own APIs on one local port, rendering with the mock.

    Emulated hosts: {", ".join(HOSTS)}.

    Unmodified clients (fal-client, requests, curl, `kling edit --provider fal` with base_url
    pointed here) get the host's routes, status codes, error shapes and limits; results are
    the mock's deterministic renders, served by the emulator itself. It never contacts a real
    host. Prints one line per host with its base URL and how to point each client at it, then
    one line per request. Ctrl-C stops it.
    """


@click.command("emulate", help=HELP)
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="Address to listen on; a non-loopback one needs --public.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0 picks a free one).")
@click.option("--hosts", "hosts", default=",".join(HOSTS), show_default=True,
              help="Comma-separated hosts to emulate (default: every emulated host).")
@click.option("--render", type=click.Choice(RENDER_CHOICES), default=None,
              help="full: the mock's render; fast: a small render; sample: a ready-made clip (load tests). "
                   "[default: full]")
@click.option("--state", "state", type=click.Path(file_okay=False), default=None,
              help="Keep jobs, uploads and renders in this folder across restarts (default: a temporary one).")
@click.option("--media-root", type=click.Path(file_okay=False, exists=True), default=None,
              help="Local files under this folder may be named as inputs (file:// URLs or paths).")
@click.option("--fail", "fail", multiple=True, metavar="HOST=FAILURE",
              help="Script a failure for every job of a host (a mock failure name, e.g. fal=content_policy, or "
                   "the host's own outcome: replicate=aborted, kling=in_flight_limit).")
@click.option("--settings", "settings_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A TOML file of emulator settings (docs/emulator.md); options given here win.")
@click.option("--tls", is_flag=True, help="Serve https with a self-signed certificate for 127.0.0.1/localhost "
                                          "(fal-client needs it); clients trust the CA file it prints.")
@click.option("--public", is_flag=True, help="Allow a non-loopback --bind address.")
@click.option("--json", "as_json", is_flag=True, help="First print a JSON object mapping host name to base URL.")
def command(bind: str, port: int, hosts: str, render: str | None, state: str | None, media_root: str | None,
            fail: tuple[str, ...], settings_file: str | None, tls: bool, public: bool, as_json: bool) -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"kling emulate needs the emulator extra ({exc.name} is missing): "
                                   "pip install 'kling-core[emulator]'") from None
    import attrs

    from kling_core.emulator import Emulator, EmulatorSettings, HostSettings, load_settings_file
    from kling_core.emulator.settings import check_failure

    settings = load_settings_file(settings_file) if settings_file else EmulatorSettings()
    host_settings = dict(settings.host_settings)
    for host, name in _fail_option(fail).items():
        host_settings[host] = attrs.evolve(host_settings.get(host, HostSettings()),
                                           fail=None if name == "none" else check_failure(name, f"fail.{host}", host))
    settings = attrs.evolve(
        settings,
        hosts=tuple(h for h in hosts.split(",") if h.strip()),
        render=render or settings.render,
        state_dir=Path(state).expanduser().resolve() if state else settings.state_dir,
        media_root=Path(media_root).expanduser().resolve() if media_root else settings.media_root,
        host_settings=host_settings,
        tls=tls,
    )
    emulator = Emulator(settings, bind=bind, port=port, public=public,
                        log=lambda line: click.echo(line, err=True))
    emulator.prepare()  # binds the port now, so the URLs printed are the real ones
    if as_json:
        click.echo(json.dumps(emulator.urls))
    for line in emulator.hint_lines():
        click.echo(line)
    if emulator.ca_file is not None:
        click.echo(f"tls  clients trust {emulator.ca_file} (SSL_CERT_FILE for httpx/fal-client, "
                   "REQUESTS_CA_BUNDLE for requests, --cacert for curl)")
    click.echo(f"render={settings.render}  state={settings.state_dir or 'temporary'}  Ctrl-C stops", err=True)
    emulator.serve()
    click.echo("emulator stopped", err=True)
