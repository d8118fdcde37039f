"""Request bodies at the door: a size limit before anything reads them, and the storable-JSON rule before
FastAPI parses them."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callmemory.api import errors
from callmemory.core.errors import PayloadTooLarge
from callmemory.core.storable import check_text, field_name
from callmemory.platforms.body import json_document


class BodyLimit:
    """Pure ASGI middleware: a body over `limit` bytes gets 413 before the app sees the request.

    A declared Content-Length over the limit is refused unread; otherwise the body is read here (as it
    arrives, so a chunked or lying sender is cut off at the limit, not at the end of its body) and handed
    on whole. Every route is covered, whether or not it reads its body, and whatever runs first in it:
    FastAPI reads a route's body before it checks the route's API key.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except PayloadTooLarge as exc:
            response = await errors.refused(Request(scope), exc)
            await response(scope, receive, send)
            return
        if body is None:
            return  # the client went away: nobody to answer
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:  # after the body, what the server has to say (a disconnect)
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit:
            raise PayloadTooLarge(f"the body is {declared} bytes; at most {self._limit} are accepted")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            body += message.get("body", b"")
            if len(body) > self._limit:
                raise PayloadTooLarge(f"the body is over {self._limit} bytes")
            if not message.get("more_body", False):
                return bytes(body)


class StorableInputRoute(APIRoute):
    """A route whose path, query and JSON body are held to the webhooks' rule (`storable`) before FastAPI
    reads them: FastAPI's own parser would answer a body nested too deep with a bare 400, and let through
    strings that no store can hold."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
                check_text(str(value), field_name((name,)))
            body = await request.body()  # kept by the request: FastAPI reads this copy again
            if body.strip():
                json_document(body)
            return await handler(request)

        return checked
