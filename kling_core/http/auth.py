"""Credentials as ``httpx.Auth`` objects that only ever reach the provider's API hosts.

:class:`HeaderAuth` puts a key in one header (``Authorization: Key …``, ``x-api-key: …``).
A host whose tokens expire subclasses :class:`RefreshingAuth`: it signs each request with a
fresh-enough token and, when an idempotent request (GET/HEAD/PUT-less) comes back rejected for
its token, signs it again once. A submit is never repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import httpx

from kling_core.errors import ProtocolError
from kling_core.settings import Secret

IDEMPOTENT = frozenset({"GET", "HEAD"})


class CredentialAuth(httpx.Auth):
    """Refuses to sign a request for a host that is not the provider's API host."""

    def __init__(self, provider: str, allowed_hosts: Callable[[], frozenset[str]]) -> None:
        self.provider = provider
        self.allowed_hosts = allowed_hosts

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provider={self.provider!r}>"

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
    answer to an idempotent request is retried once with a fresh token.
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

    def _sign(self, request: httpx.Request) -> None:
        request.headers[self.header] = f"{self.scheme} {self.token()}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.check_host(request)
        self._sign(request)
        response = yield request
        if self.rejected(response):
            self.invalidate()  # the next request (or this retry) mints a fresh token
            if request.method in IDEMPOTENT:
                self._sign(request)
                response = yield request
                if self.rejected(response):
                    self.invalidate()  # refused again (a clock far off): never reuse it
