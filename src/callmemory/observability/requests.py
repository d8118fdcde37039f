"""Pure ASGI middleware: gives every request an id (the caller's X-Request-ID, or a fresh one), makes it
known to every log line of the request, and returns it in the response's X-Request-ID header.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: that one runs the app in another task, costing
time on every webhook and hiding the context variables set here from the handlers.
"""

from __future__ import annotations

import random
import re
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callmemory.observability import context

HEADER: Final = "x-request-id"
# Only ids that are safe to write into a log line and a header as they are.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Ids need to be unique, not unguessable: a seeded generator, without uuid4's system call per request.
_ids = random.Random()  # noqa: S311 - see above


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER.encode(), b"").decode("latin-1")
        request_id = given if _ACCEPTED.fullmatch(given) else f"{_ids.getrandbits(128):032x}"
        tokens = (
            context.request_id.set(request_id),
            context.call_id.set(None),
            context.caller.set(None),
        )

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            context.request_id.reset(tokens[0])
            context.call_id.reset(tokens[1])
            context.caller.reset(tokens[2])
