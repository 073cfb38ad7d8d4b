"""The checks every request passes before a provider sees it: no I/O, every problem at once.

One function, so the client (``AsyncEditClient.check``), the contract suite and the cassette
recorder refuse exactly the same requests in exactly the same words.
"""

from __future__ import annotations

from collections.abc import Callable

from kling_core.contract.checks import URLS_ONLY, check_against, check_local_media, check_references
from kling_core.contract.models import EditRequest
from kling_core.errors import Problem, UnsupportedError, ValidationError
from kling_core.provider import Provider

# ``PluginHost.uploader``: the uploader a plugin offers for a provider, or None.
UploaderLookup = Callable[[str], object | None]


def check_request(
    provider: Provider,
    request: EditRequest,
    *,
    find_uploader: UploaderLookup | None = None,
    check_files: bool = True,
) -> None:
    """Raise if ``request`` cannot go to ``provider``; return None when it can.

    ValidationError when the request is wrong in itself (a dangling ``@Image3``, a missing
    local file), listing the provider's objections too; UnsupportedError when only this
    provider cannot serve it. ``find_uploader`` is asked only when a local file would
    otherwise be refused (an uploader plugin turns local files into URLs).
    ``check_files=False`` skips the file-system look-up (unit tests of a provider's refusals).
    """
    own = check_references(request) + (check_local_media(request) if check_files else [])
    caps = check_against(request, provider.capabilities, provider.name) + list(provider.check(request))
    if (
        caps
        and find_uploader is not None
        and not provider.capabilities.accepts_local_files
        and find_uploader(provider.name) is not None
    ):
        caps = [p for p in caps if p.message != URLS_ONLY]
    if own:
        raise ValidationError(own + [Problem(p.path, f"{p.message} (provider {provider.name!r})") for p in caps])
    if caps:
        raise UnsupportedError(provider.name, caps)
