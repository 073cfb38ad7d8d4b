"""Credentials as ``httpx.Auth`` objects that only ever reach the provider's API hosts.

:class:`HeaderAuth` puts a key in one header (``Authorization: Key …``, ``x-api-key: …``).
A host whose tokens expire uses :class:`~kling_core.http.tokens.ExpiringTokenAuth` (a
:class:`RefreshingAuth`): it signs each request with a fresh-enough token and, when an
idempotent request (GET/HEAD) comes back rejected for its token, signs it again once. A submit
is never repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import httpx

from kling_core.errors import ProtocolError
from kling_core.http.errormap import ErrorInfo
from kling_core.settings import Secret

IDEMPOTENT = frozenset({"GET", "HEAD"})


class CredentialAuth(httpx.Auth):
    """Refuses to sign a request for a host that is not the provider's API host."""

    def __init__(self, provider: str, allowed_hosts: Callable[[], frozenset[str]]) -> None:
        self.provider = provider
        self.allowed_hosts = allowed_hosts

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provider={self.provider!r}>"

    def explain(self, info: ErrorInfo, response: httpx.Response) -> ErrorInfo:
        """``info`` with whatever this auth learnt about ``response`` (``HttpProvider.error_info``
        asks); unchanged by default."""
        return info

    def check_host(self, request: httpx.Request) -> None:
        host = request.url.host
        if not host or host not in self.allowed_hosts():
            raise ProtocolError(
                f"refusing to send the {self.provider} credential to {host!r}, which is not its API host",
                provider=self.provider,
            )


class HeaderAuth(CredentialAuth):
    """One secret in one header, with an optional scheme word (``Key``, ``Bearer``)."""

    def __init__(
        self, provider: str, allowed_hosts: Callable[[], frozenset[str]], *,
        secret: Secret, header: str = "authorization", scheme: str = "Bearer",
    ) -> None:
        super().__init__(provider, allowed_hosts)
        self._secret = secret
        self.header = header
        self.scheme = scheme

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.check_host(request)
        value = self._secret.reveal()
        request.headers[self.header] = f"{self.scheme} {value}" if self.scheme else value
        yield request


class RefreshingAuth(CredentialAuth):
    """A short-lived token: minted by :meth:`token`, dropped by :meth:`invalidate`.

    Subclasses say which answers mean "this token was refused" (:meth:`rejected`); such an
    answer to an idempotent request is retried once with a fresh token, a submit never is.
    :meth:`sign` and :meth:`refused` are the hooks of :class:`~kling_core.http.tokens.ExpiringTokenAuth`
    (tokens with a validity window, and a note when the host's clock is off).
    """

    requires_response_body = True
    header = "authorization"
    scheme = "Bearer"

    def token(self) -> str:
        raise NotImplementedError

    def invalidate(self) -> None:
        raise NotImplementedError

    def rejected(self, response: httpx.Response) -> bool:
        return False

    def sign(self, request: httpx.Request, *, fresh: bool) -> Any:
        """Put a token on ``request``; ``fresh``: one minted moments ago (a request that is never
        repeated, or the retry). Returns what :meth:`refused` is told about that token."""
        self.put(request, self.token())
        return None

    def put(self, request: httpx.Request, token: str) -> None:
        """``token`` in :attr:`header`, after the :attr:`scheme` word if there is one."""
        request.headers[self.header] = f"{self.scheme} {token}" if self.scheme else token

    def refused(self, response: httpx.Response, signed: Any, *, retried: bool) -> None:
        """A fresh-enough token was refused and no retry is left (``signed``: what :meth:`sign`
        returned for it). Nothing by default."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.check_host(request)
        idempotent = request.method in IDEMPOTENT
        signed = self.sign(request, fresh=not idempotent)
        response = yield request
        if not self.rejected(response):
            return
        self.invalidate()  # the next request (or this retry) mints a fresh token
        if idempotent:
            signed = self.sign(request, fresh=True)
            response = yield request
            if not self.rejected(response):
                return
            self.invalidate()  # refused again (a clock far off): never reuse it
        self.refused(response, signed, retried=idempotent)
