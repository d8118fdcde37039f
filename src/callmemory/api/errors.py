"""One error shape for every 4xx/5xx: `{"error": code, "detail": message, "field": name?}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from callmemory.core.errors import CallMemoryError

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str
    detail: str
    field: str | None = None


def _body(code: str, detail: str, field: str | None = None) -> dict[str, Any]:
    return ErrorBody(error=code, detail=detail, field=field).model_dump(exclude_none=True)


async def refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CallMemoryError)
    log.info("refused request: %s %s", exc.code, exc.message)
    return JSONResponse(_body(exc.code, exc.message, exc.field), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "http_error"
    )
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return JSONResponse(_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method served at the request's path: Starlette's 405 names those of the first route only,
    and a path may have a route per method (VoIPBin's fetch has GET and POST). Asked of the router per
    method, since routes sit inside included routers."""
    routes: list[BaseRoute] = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(p) for p in first["loc"][1:]) or None
    return JSONResponse(_body("invalid_request", str(first["msg"]), field), status_code=422)


async def unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(_body("internal_error", "an unexpected error occurred"), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(CallMemoryError, refused)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, unexpected)


# One example body per status, as the handlers above produce it.
_ERRORS: dict[int, tuple[str, ErrorBody]] = {
    400: (
        "The body is not JSON",
        ErrorBody(error="malformed_body", detail="the body is not valid JSON: Expecting value"),
    ),
    401: (
        "Missing or wrong credentials",
        ErrorBody(error="unauthorized", detail="send the API key as `Authorization: Bearer <key>`"),
    ),
    404: (
        "No such caller or call for this key (also for another bot's callers: no oracle)",
        ErrorBody(error="not_found", detail="no caller +14155551234 of bot +14155550000 for this key"),
    ),
    409: (
        "The event does not fit the call's state (not started, already ended, another caller)",
        ErrorBody(error="call_already_ended", detail="call 'c-1' has already ended"),
    ),
    413: (
        "The body is larger than CALLMEMORY_MAX_BODY_BYTES",
        ErrorBody(error="payload_too_large", detail="the body is 70000 bytes; at most 65536 are accepted"),
    ),
    422: (
        "A field is missing or invalid; `field` names it",
        ErrorBody(error="invalid_phone_number", detail="`from` is not a possible phone number", field="from"),
    ),
    503: (
        "A store is unavailable; retry later, nothing was lost",
        ErrorBody(error="store_unavailable", detail="hot memory is unavailable while recording a turn"),
    ),
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries, with an example body each, for the error statuses an endpoint can answer with."""
    return {status: error_response(*_ERRORS[status]) for status in statuses}


def error_response(description: str, body: ErrorBody) -> dict[str, Any]:
    """An OpenAPI error entry with its example body, for a status whose usual meaning does not fit."""
    return {
        "model": ErrorBody,
        "description": description,
        "content": {"application/json": {"example": body.model_dump(exclude_none=True)}},
    }


def example(description: str, body: Any) -> dict[str, Any]:
    """An OpenAPI response entry with one example body, for a success answer."""
    return {"description": description, "content": {"application/json": {"example": body}}}
