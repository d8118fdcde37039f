"""A stand-in for the one call of VoIPBin's REST API that own-LLM mode makes, `POST /v1.0/calls/{id}/talk`,
for `callmemory simulate` and the tests. It refuses what VoIPBin refuses, the way VoIPBin refuses it:

- credentials as bin-api-manager's `lib/middleware/authenticate.go` reads them: a `token` cookie, a `token`
  query parameter or an `Authorization: Bearer` value is a login JWT and is parsed first (an access key
  there is an invalid JWT: 401 INVALID_CREDENTIALS, even beside a valid key); otherwise the `accesskey`
  cookie, then the `accesskey` query parameter; none at all is 401 AUTHENTICATION_REQUIRED;
- a call id that is not a UUID, or a body that is not JSON, is 400 (`server/calls.go`);
- a talk into a call that has hung up fails in the call manager (it cannot answer a channel that is
  gone), which the api-manager reports as 500;
- success is 200 with an empty body.

Errors come in VoIPBin's envelope: `{"error": {"status", "reason", "message", "request_id"}}`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TALK_PATH = "/v1.0/calls/{call_id}/talk"


def _error(status: int, code: str, reason: str, message: str) -> JSONResponse:
    body = {"error": {"status": code, "reason": reason, "message": message, "request_id": str(uuid.uuid4())}}
    return JSONResponse(body, status_code=status)


def _jwt(request: Request) -> str:
    """What VoIPBin would parse as a login token (getTokenString), or ''."""
    token = request.cookies.get("token") or request.query_params.get("token")
    if token:
        return token
    parts = request.headers.get("authorization", "").split("Bearer ", 1)
    return parts[1] if len(parts) == 2 else ""


def _access_key(request: Request) -> str:
    return request.cookies.get("accesskey") or request.query_params.get("accesskey") or ""


_INVALID_CREDENTIALS = ("INVALID_CREDENTIALS", "The provided credentials are invalid.")


def _invalid_id(call_id: str) -> Response | None:
    try:
        uuid.UUID(call_id)
    except ValueError:
        return _error(400, "INVALID_ARGUMENT", "INVALID_ID", "The provided id is not a valid UUID.")
    return None


@dataclass
class TalkStandIn:
    """VoIPBin's talk API for one run: the talks it took, those it refused, and how it should fail."""

    access_key: str | None  # the one key it takes; None: any key (a simulated account's key is not known)
    talks: list[dict[str, Any]] = field(default_factory=list)  # accepted: call_id, the body, how authed
    refused: list[tuple[str, int]] = field(default_factory=list)  # (call id, status) of every refusal
    failures: list[int] = field(default_factory=list)  # statuses to answer first, in order (5xx, 4xx)
    ended: set[str] = field(default_factory=set)  # calls VoIPBin has hung up
    on_talk: Callable[[str, str], None] | None = None  # told (call id, text) of every accepted talk

    def hung_up(self, call_id: str) -> None:
        """VoIPBin ended the call (before it tells anyone by webhook)."""
        self.ended.add(call_id)

    def said(self, call_id: str) -> list[str]:
        return [str(t["text"]) for t in self.talks if t["call_id"] == call_id]

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route(TALK_PATH, self.talk, methods=["POST"])])

    def _unauthenticated(self, request: Request) -> Response | None:
        if _jwt(request):
            return _error(401, "UNAUTHENTICATED", *_INVALID_CREDENTIALS)
        key = _access_key(request)
        if not key:
            return _error(401, "UNAUTHENTICATED", "AUTHENTICATION_REQUIRED", "Authentication is required.")
        if self.access_key is not None and key != self.access_key:
            return _error(401, "UNAUTHENTICATED", *_INVALID_CREDENTIALS)
        return None

    async def talk(self, request: Request) -> Response:
        call_id = request.path_params["call_id"]
        response = await self._answer(request, call_id)
        if response.status_code != 200:
            self.refused.append((call_id, response.status_code))
        return response

    async def _answer(self, request: Request, call_id: str) -> Response:
        refusal = self._unauthenticated(request) or _invalid_id(call_id)
        if refusal is not None:
            return refusal
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "INVALID_ARGUMENT", "INVALID_JSON_BODY", "The request body is not valid JSON.")
        if call_id in self.ended:
            return _error(500, "INTERNAL", "INTERNAL", "An internal error occurred.")
        if self.failures:
            status = self.failures.pop(0)
            return _error(status, "UNAVAILABLE" if status >= 500 else "FAILED_PRECONDITION", "STUB", "stub")
        self.talks.append(
            {
                "call_id": call_id,
                "authorization": request.headers.get("authorization"),
                "cookies": dict(request.cookies),
                "query": dict(request.query_params),
                **body,
            }
        )
        if self.on_talk is not None:
            self.on_talk(call_id, str(body.get("text", "")))
        return Response(status_code=200)
