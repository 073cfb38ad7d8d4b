"""The receiver as an ASGI app (Starlette): ``POST /hooks/{provider}[/{client_key}]``.

The body is read raw (signatures cover the exact bytes), capped before it is read whole.
``GET /hooks`` lists the providers that take callbacks here and how each is checked.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kling_core.asgi_body import BodyTooLarge, read_body
from kling_core.webhooks.receiver import MAX_BODY, WebhookReceiver, callback_shape


async def _body(request: Request) -> bytes | None:
    try:
        return await read_body(request, MAX_BODY)
    except BodyTooLarge:
        return None


def callback_providers(receiver: WebhookReceiver) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, cls in sorted(receiver.client.host.providers.items()):
        shape = callback_shape(cls)
        if shape is not None:
            out[name] = {"signature": shape.signature or "unsigned (confirmed by a status look-up)"}
    return out


def build_app(receiver: WebhookReceiver) -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        provider = request.path_params["provider"]
        key = request.path_params.get("client_key")
        body = await _body(request)
        if body is None:
            return JSONResponse({"error": f"the body is over {MAX_BODY} bytes"}, status_code=413)
        headers = {name.lower(): value for name, value in request.headers.items()}
        answer = await receiver.handle(provider, body, headers, client_key=key)
        extra = {"retry-after": "30"} if answer.status == 503 else None
        return JSONResponse(dict(answer.body), status_code=answer.status, headers=extra)

    async def index(request: Request) -> JSONResponse:
        return JSONResponse({"providers": callback_providers(receiver)})

    return Starlette(routes=[
        Route("/hooks", index, methods=["GET"]),
        Route("/hooks/{provider}", hook, methods=["POST"]),
        Route("/hooks/{provider}/{client_key}", hook, methods=["POST"]),
    ])
