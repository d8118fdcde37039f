"""Endpoints reached without FastAPI's routing, dependency injection and middleware stack.

A telephony webhook is what a caller waits for, several times a minute per call, and it needs none of
that machinery: profiled under load, the way from uvicorn to the webhook's handler cost a sixth of the
request's CPU. FastAPI still routes (and documents) the same endpoint function; a fast path only skips
the layers in between, giving the same request id context, body limit and error bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from callmemory.api import errors
from callmemory.api.body import BodyLimit
from callmemory.core.errors import CallMemoryError, ShuttingDown
from callmemory.observability.requests import RequestContext

Endpoint = Callable[[Request], Awaitable[Response]]


class FastPathApp(FastAPI):
    """FastAPI, with some (method, path) pairs served straight by their endpoint function."""

    def __init__(self, *, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fast_paths: dict[tuple[str, str], Endpoint] = {}
        self._serve_fast_path = RequestContext(BodyLimit(self._fast_path, max_body_bytes))

    def add_fast_path(self, method: str, path: str, endpoint: Endpoint) -> None:
        """Serve `method path` with `endpoint` directly; FastAPI's route for it stays, for the docs."""
        self._fast_paths[(method, path)] = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            if (scope["method"], scope["path"]) in self._fast_paths:
                await self._serve_fast_path(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # uvicorn cancels what is still running when its graceful shutdown runs out, and would then
            # answer a plain-text 500 itself: the platform gets our error shape, and a 503 to retry on.
            await _answer_cancelled(scope, receive, send)
            raise

    async def _fast_path(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        endpoint = self._fast_paths[(scope["method"], scope["path"])]
        try:
            response = await endpoint(request)
        except CallMemoryError as exc:
            response = await errors.refused(request, exc)
        except Exception as exc:  # as FastAPI's outermost handler would: a 500, logged
            response = await errors.unexpected(request, exc)
        await response(scope, receive, send)


async def _answer_cancelled(scope: Scope, receive: Receive, send: Send) -> None:
    refusal = ShuttingDown("the service is shutting down; retry the request on another instance")
    response = await errors.refused(Request(scope, receive), refusal)
    # RuntimeError: the response had begun (the server refuses a second start); OSError: the client left.
    with contextlib.suppress(RuntimeError, OSError):
        await response(scope, receive, send)
