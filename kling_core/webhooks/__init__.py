"""Webhooks you can trust: host callbacks verified, matched to the job log and confirmed.

- :mod:`.signatures` — the signature schemes as data (fal's Ed25519; the HMAC of Standard
  Webhooks and of WaveSpeed);
- :mod:`.jwks` — fal's key set, fetched through the guarded fetch, cached and refreshed;
- :mod:`.replay` — deliveries already acted on (a replay is refused), in ``webhooks.db``;
- :mod:`.secrets` — HMAC signing secrets (Replicate, WaveSpeed) from ``[webhooks.secrets]``;
- :mod:`.receiver` — :class:`WebhookReceiver`: one callback in, one answer out;
- :mod:`.pacing` — at most one confirming look-up per job per interval for unsigned callbacks;
- :mod:`.confirm` — the status look-up's outcome, recorded in the job log;
- :mod:`.batch` — ``kling batch --webhooks``: the receiver's URL on each line it can serve;
- :mod:`.app` / :mod:`.server` — the ASGI app, :func:`serve_webhooks` (in-process) and
  ``kling webhooks serve``. Starlette and uvicorn come with the ``webhooks`` extra.

See docs/webhooks.md.
"""

from kling_core.webhooks.errors import WebhookRefused
from kling_core.webhooks.receiver import Answer, WebhookReceiver
from kling_core.webhooks.server import RunningReceiver, serve_webhooks

__all__ = ["Answer", "RunningReceiver", "WebhookReceiver", "WebhookRefused", "serve_webhooks"]
