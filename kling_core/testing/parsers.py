"""Feeding generated host answers to a provider's parsers: a value or ProtocolError, nothing else."""

from __future__ import annotations

from typing import Any

import attrs
import httpx

from kling_core.contract import status as _status
from kling_core.contract.models import EditRequest
from kling_core.contract.status import Cancelled, Failed, Queued, Running, Succeeded
from kling_core.errors import ProtocolError, ProviderError
from kling_core.provider import JobHandle, Provider
from kling_core.testing.replay import ContractFailure, describe_exception

_SAMPLE_REQUEST = EditRequest(prompt="Make the sky a sunset", video="https://media.example.com/video/a.mp4")


@attrs.frozen
class RawBody:
    """A response body that is not JSON."""

    text: str


# What a status parser may return: a job status, or (hosts with a result-fetch step) the
# ``Completed`` marker meaning "fetch the result now", where kling-core has it.
_COMPLETED = getattr(_status, "Completed", None)
PARSED_STATUSES: tuple[type, ...] = (
    Queued, Running, Succeeded, Failed, Cancelled, *([_COMPLETED] if isinstance(_COMPLETED, type) else []),
)

NOT_JSON_BODIES = ("", "<html><body>502 Bad Gateway</body></html>", '{"id": "ed_1", "sta', "null", "OK")


def feed_parser(provider: Provider, kind: str, doc: Any, data: Any) -> None:
    """Parse one generated body; anything but a canonical value or ProtocolError fails."""
    from hypothesis import strategies as st

    request = httpx.Request("GET", "https://api.example.com/x")
    if kind == "error":
        status = data.draw(st.sampled_from([400, 401, 402, 403, 404, 409, 422, 429, 500, 502, 503]), label="status")
        response = (
            httpx.Response(status, text=doc.text, headers={"content-type": "text/html"}, request=request)
            if isinstance(doc, RawBody)
            else httpx.Response(status, json=doc, request=request)
        )
        try:
            err = provider.map_error(response)  # type: ignore[attr-defined]
        except Exception as exc:
            raise ContractFailure(f"map_error raised {describe_exception(exc)} on HTTP {status} {doc!r}") from exc
        assert isinstance(err, ProviderError), f"map_error returned {err!r}"
        assert err.status_code == status, f"map_error lost the status code ({err.status_code} != {status})"
        return
    response = (
        httpx.Response(200, text=doc.text, headers={"content-type": "text/html"}, request=request)
        if isinstance(doc, RawBody)
        else httpx.Response(200, json=doc, request=request)
    )
    handle = provider.resume("job-0001", model=provider.capabilities.models[0].model)
    try:
        if kind.startswith("submit"):
            value = provider.parse_submit(response, _SAMPLE_REQUEST)  # type: ignore[attr-defined]
            assert isinstance(value, JobHandle), f"parse_submit returned {value!r}, not a JobHandle"
        else:
            value = provider.parse_status(response, handle)  # type: ignore[attr-defined]
            assert isinstance(value, PARSED_STATUSES), (
                f"parse_status returned {value!r}, not a JobStatus"
            )
    except ProtocolError:
        return
    except Exception as exc:
        raise ContractFailure(
            f"parse of a {kind} body raised {describe_exception(exc)} (only ProtocolError is allowed) on {doc!r}"
        ) from exc


