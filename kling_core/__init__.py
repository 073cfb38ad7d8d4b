"""kling-core: one contract over every host of the Kling O1/O3 video-to-video edit models.

The public API for users is what this package exports (``__all__``): the one-shot
:func:`edit`/:func:`aedit`, the clients, the request/result models, job statuses, the job
log's records and :func:`prune_cache`, and the error hierarchy. Plugin authors import from
:mod:`kling_core.sdk`, and test with :mod:`kling_core.testing`. Every other module is internal. See docs/api.md.

Names load on first use, so ``import kling_core`` (and ``kling --help``) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kling_core.lazy import exporter

if TYPE_CHECKING:
    from kling_core.batches import BatchLineResult, abatch, batch
    from kling_core.client import AsyncEditClient, EditClient, Started, aedit, edit
    from kling_core.config import KlingConfig, load_config
    from kling_core.contract.models import EditRequest, EditResult, Element, OutputVideo
    from kling_core.contract.status import Cancelled, Failed, JobStatus, Queued, Running, Succeeded
    from kling_core.errors import (
        AuthenticationError,
        ConfigError,
        ContentPolicyError,
        InsufficientCreditsError,
        JobCancelledError,
        JobFailedError,
        JobTimeoutError,
        KlingError,
        MediaError,
        MissingKeyError,
        Problem,
        ProtocolError,
        ProviderError,
        ProviderValidationError,
        RateLimitedError,
        ResultExpiredError,
        SubmitUncertainError,
        UnsafeMediaError,
        UnsupportedError,
        ValidationError,
    )
    from kling_core.hookspecs import hookimpl
    from kling_core.joblog import JobEvent, JobLog, JobRecord, PruneReport, prune_cache
    from kling_core.pricing import CostEstimate, estimate_cost
    from kling_core.provider import JobHandle
    from kling_core.webhooks import RunningReceiver, WebhookReceiver, WebhookRefused, serve_webhooks

_WHERE = {
    "kling_core.batches": ("BatchLineResult", "abatch", "batch"),
    "kling_core.client": ("AsyncEditClient", "EditClient", "Started", "aedit", "edit"),
    "kling_core.config": ("KlingConfig", "load_config"),
    "kling_core.contract.models": ("EditRequest", "EditResult", "Element", "OutputVideo"),
    "kling_core.contract.status": ("Cancelled", "Failed", "JobStatus", "Queued", "Running", "Succeeded"),
    "kling_core.errors": (
        "AuthenticationError", "ConfigError", "ContentPolicyError", "InsufficientCreditsError",
        "JobCancelledError", "JobFailedError", "JobTimeoutError", "KlingError", "MediaError",
        "MissingKeyError", "Problem", "ProtocolError", "ProviderError", "ProviderValidationError",
        "RateLimitedError", "ResultExpiredError", "SubmitUncertainError", "UnsafeMediaError",
        "UnsupportedError", "ValidationError",
    ),
    "kling_core.hookspecs": ("hookimpl",),
    "kling_core.joblog": ("JobEvent", "JobLog", "JobRecord", "PruneReport", "prune_cache"),
    "kling_core.pricing": ("CostEstimate", "estimate_cost"),
    "kling_core.provider": ("JobHandle",),
    "kling_core.webhooks": ("RunningReceiver", "WebhookReceiver", "WebhookRefused", "serve_webhooks"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "AsyncEditClient",
    "AuthenticationError",
    "BatchLineResult",
    "Cancelled",
    "ConfigError",
    "ContentPolicyError",
    "CostEstimate",
    "EditClient",
    "EditRequest",
    "EditResult",
    "Element",
    "Failed",
    "InsufficientCreditsError",
    "JobCancelledError",
    "JobEvent",
    "JobFailedError",
    "JobHandle",
    "JobLog",
    "JobRecord",
    "JobStatus",
    "JobTimeoutError",
    "KlingConfig",
    "KlingError",
    "MediaError",
    "MissingKeyError",
    "OutputVideo",
    "Problem",
    "ProtocolError",
    "ProviderError",
    "ProviderValidationError",
    "PruneReport",
    "Queued",
    "RateLimitedError",
    "ResultExpiredError",
    "Running",
    "RunningReceiver",
    "Started",
    "SubmitUncertainError",
    "Succeeded",
    "UnsafeMediaError",
    "UnsupportedError",
    "ValidationError",
    "WebhookReceiver",
    "WebhookRefused",
    "abatch",
    "aedit",
    "batch",
    "edit",
    "estimate_cost",
    "hookimpl",
    "load_config",
    "prune_cache",
    "serve_webhooks",
]
__version__ = "0.1.0"


_load = exporter(__name__, _MODULE_OF)


def __getattr__(name: str) -> Any:
    return _load(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
