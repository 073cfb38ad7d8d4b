"""When to poll a job next: rare polls early, close ones around the host's typical finish.

A hosted edit takes minutes and ends at a fairly predictable time, so polling at a fixed pace
either wastes requests (fal-client: every 0.1 s) or notices the end late (a backoff grown to
20 s). The schedule here is shaped by the job's typical duration range ``(low, high)`` seconds
after submit, from the model's capability data or ``[providers.NAME.poll]``:

* before the range: the backoff (``initial`` × ``factor``ⁿ up to ``max``, ± ``jitter``), cut so
  that a poll lands where the range starts;
* inside it: at most ``window_every`` seconds apart (or ``max``, if smaller; jitter only
  shortens the gap), so a job ending there is noticed within that;
* after it (an outlier): every ``outlier_fraction`` of the time since submit (at least
  ``window_every``, at most ``max``), so it is noticed within that fraction of its duration;
* while a push channel is live (the host's status stream, or an in-process webhook receiver
  that calls :meth:`~kling_core.client.follow.FollowMixin.wake`): a safety poll every
  ``push_every`` seconds; the push cuts the wait short when the job ends.

Without a typical range the backoff alone is used. The function is pure: the wait loop passes
the elapsed time, the backoff's next value and a random draw, so tests need no clock.
"""

from __future__ import annotations

import attrs

from kling_core.contract.capabilities import ProviderCapabilities
from kling_core.settings import PollSettings


@attrs.frozen
class PollSchedule:
    poll: PollSettings
    typical: tuple[float, float] | None = None  # (low, high) seconds after submit

    @classmethod
    def for_job(cls, poll: PollSettings, capabilities: ProviderCapabilities, model: str | None) -> PollSchedule:
        """The schedule of one job: config's range for its model, else the model's capability data."""
        typical = poll.typical_for(model)
        if typical is None:
            caps = capabilities.model(model) if model is not None else None
            if caps is not None and caps.typical_seconds is not None:
                typical = (min(caps.typical_seconds), max(caps.typical_seconds))
        return cls(poll, typical)

    def delay(self, elapsed: float, backoff: float, draw: float, *, pushed: bool = False) -> float:
        """Seconds until the next poll, ``elapsed`` seconds after submit.

        ``backoff``: the next value of :func:`~kling_core.backoff.backoff_delays`;
        ``draw``: a random number in [0, 1) for the jitter of the bounded phases.
        """
        poll = self.poll
        shorten = 1.0 - poll.jitter * min(max(draw, 0.0), 1.0)  # jitter never lengthens a bound
        if pushed:
            return poll.push_every * shorten
        if self.typical is None:
            return backoff
        low, high = self.typical
        window = min(poll.window_every, poll.max) if poll.max > 0 else poll.window_every  # max bounds every gap
        if elapsed < low - window:
            return min(backoff, low - elapsed)
        if elapsed <= high:
            return window * shorten
        return min(max(window, poll.outlier_fraction * elapsed), max(poll.max, window)) * shorten
