"""``kling webhooks``: the receiver hosts call back (docs/webhooks.md).

Nothing heavy is imported until a subcommand runs, so ``kling --help`` works without the
``webhooks`` extra.
"""

from __future__ import annotations

import json

import click

from kling_core.cli.common import State
from kling_core.cli.completion_cmd import complete_providers
from kling_core.errors import ConfigError

INTERRUPTED = 130  # the README's exit code for an interrupted command

pass_state = click.make_pass_decorator(State)


def _require_extra() -> None:
    try:
        import cryptography  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"kling webhooks needs the webhooks extra ({exc.name} is missing): "
                                   "pip install 'kling-core[webhooks]'") from None


@click.group("webhooks")
def command() -> None:
    """Receive host callbacks: verified, matched to the job log, confirmed by a status look-up.

    fal's Ed25519 signatures are checked against its published keys, Replicate's (Standard
    Webhooks) and WaveSpeed's HMAC signatures against [webhooks.secrets]; a stale or replayed
    delivery is refused.
    Unsigned callbacks (Kling, Unifically) only count once the host's own status agrees.
    """


@command.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: [webhooks] host, 127.0.0.1); "
                                           "a non-loopback one needs --public.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (0 picks a free one; default: [webhooks] port, 8766).")
@click.option("--public", is_flag=True, help="Allow a non-loopback --host (prefer a tunnel or TLS proxy in front).")
@click.option("--json", "as_json", is_flag=True, help="First print a JSON object with the base URL and the "
                                                      "webhook URL of each provider that takes callbacks.")
@pass_state
def serve(state: State, host: str | None, port: int | None, public: bool, as_json: bool) -> int:
    """Serve the receiver until Ctrl-C (exit 130, as for any interrupted command): POST /hooks/PROVIDER[/CLIENT_KEY].

    Give a job `--webhook URL` with the URL printed for its provider (behind `public_url`
    when the host must reach it from the internet). A confirmed callback updates the job
    log (succeeded jobs: save them with `kling jobs resume KEY`); a forged, stale, replayed
    or unknown one gets a 4xx and changes nothing.
    """
    _require_extra()
    from kling_core.webhooks.app import callback_providers
    from kling_core.webhooks.receiver import WebhookReceiver
    from kling_core.webhooks.server import RunningReceiver, bind_socket, serve_forever

    settings = state.config.webhooks
    bind = host if host is not None else settings.host
    sock = bind_socket(bind, port if port is not None else settings.port, public=public)
    if public:
        click.echo(f"warning: listening on {bind}, beyond this machine; callbacks are still verified and "
                   "confirmed, but prefer a tunnel or TLS proxy in front of a loopback receiver", err=True)
    receiver = WebhookReceiver(state.client(None), settings=settings, report=lambda line: click.echo(line, err=True))
    providers = callback_providers(receiver)
    running = RunningReceiver(receiver, sock, settings.public_url)
    urls = {name: running.url_for(name) for name in providers}
    if as_json:
        click.echo(json.dumps({"url": running.base_url, "providers": urls}))
    for name, hook in urls.items():
        click.echo(f"{name:<12} {hook}  ({providers[name]['signature']})")
    click.echo(f"listening on {running.local_url}  Ctrl-C stops", err=True)
    interrupted = serve_forever(receiver, sock)
    click.echo("webhook receiver stopped", err=True)
    return INTERRUPTED if interrupted else 0


@command.command("url")
@click.argument("provider", shell_complete=complete_providers)
@click.option("--client-key", default=None, help="Add the job's client key: the callback must match it too.")
@pass_state
def url(state: State, provider: str, client_key: str | None) -> None:
    """Print the webhook URL to give PROVIDER (from [webhooks] public_url, host and port)."""
    host = state.host
    cls = host.provider_class(provider)
    from kling_core.webhooks.receiver import callback_shape
    from kling_core.webhooks.server import base_url, hook_url

    if callback_shape(cls) is None:
        raise ConfigError(f"provider {provider!r} takes no callbacks", key="provider")

    click.echo(hook_url(base_url(state.config.webhooks), provider, client_key))
