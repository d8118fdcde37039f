"""Telephony webhooks: each route adapts one platform's wire format to the core's call events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from callmemory.api.deps import get_services
from callmemory.api.errors import ErrorBody, error_response, responses
from callmemory.core.events import Reply
from callmemory.observability.context import bind_call
from callmemory.observability.metrics import event_kind
from callmemory.platforms.seed import wire as seed
from callmemory.platforms.seed.auth import authenticate_seed
from callmemory.settings import Settings

router = APIRouter(tags=["webhooks"])


def document_settings(document: dict[str, Any], settings: Settings) -> None:
    """Say in the OpenAPI document what the settings decide about this route."""
    if settings.default_bot_number is None:
        seed.require_bot_number(document["paths"]["/webhook/call"]["post"]["requestBody"])


@router.post(
    "/webhook/call",
    summary="Seed-format call events: ringing, speech, hangup",
    description=(
        "Point the telephony platform's webhook here. `call.ringing` and `call.speech_recognized` are "
        "answered with actions (talk, then listen); `call.hangup` archives the call and is acknowledged. "
        "Any other event type is acknowledged with 200 and ignored. Errors name the problem and never "
        "lose data already accepted. When CALLMEMORY_WEBHOOK_SECRET is set, every request must carry "
        '`X-Callmemory-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` '
        "(or, with CALLMEMORY_WEBHOOK_TOKEN, `Authorization: Bearer <token>`), or gets 401."
    ),
    responses={
        200: {
            "description": "Actions for ringing and speech; an acknowledgement for hangup and other types.",
            # As a model, so that FastAPI lists Action among the components its schema refers to.
            "model": seed.ActionsResponse | seed.AckResponse,
            "content": {"application/json": {"examples": seed.RESPONSE_EXAMPLES}},
        },
        **responses(400, 409, 413, 422, 503),
        401: error_response(
            "CALLMEMORY_WEBHOOK_SECRET is set and the request is unsigned, signed with another secret or "
            "over other bytes, or signed longer ago than CALLMEMORY_WEBHOOK_TOLERANCE_S",
            ErrorBody(error="unauthorized", detail="the X-Callmemory-Signature header is missing"),
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": seed.request_schema(), "examples": seed.REQUEST_EXAMPLES}
            },
        }
    },
)
async def seed_call_event(request: Request) -> JSONResponse:
    # The request alone, no dependencies: the app also serves this endpoint as a fast path.
    services = await get_services(request)
    with services.metrics.webhook("seed") as seen:
        body = await request.body()  # within the limit: see api.body.BodyLimit
        authenticate_seed(request, body, services.settings)
        event = seed.parse(body)
        if isinstance(event, seed.Ignored):
            seen.type = seen.outcome = "ignored"
            return JSONResponse(seed.render(event))
        bind_call(event.call.call_id)
        seen.type = event_kind(event)
        result = await services.calls.handle(event)
        seen.outcome = "answered" if isinstance(result, Reply) else str(result)
    # A response, not a dict: FastAPI would validate and re-encode a dict against an inferred model,
    # work already done by the adapter's own models (documented in `responses` above).
    return JSONResponse(seed.render(result))
