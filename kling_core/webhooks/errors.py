"""Why a callback was refused, as the HTTP status the sender gets back."""

from __future__ import annotations

from kling_core.errors import KlingError


class WebhookRefused(KlingError):
    """A callback the receiver does not act on: ``status`` is its HTTP answer.

    4xx: forged, stale, replayed, malformed or for a job we do not know (the sender may drop
    it). 503: nothing is wrong with it but we cannot act now (keys or the host unreachable, a
    job whose id is not stored yet): the sender retries later. The message names the reason,
    never a secret or a signature.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retry(self) -> bool:
        return self.status >= 500
