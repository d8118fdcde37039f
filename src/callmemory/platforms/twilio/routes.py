"""Twilio's three webhooks: the number's Voice URL, each `<Gather>`'s action, the status callback."""

from __future__ import annotations

import logging
from typing import Annotated, Final
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response

from callmemory.api.deps import CallsDep, MetricsDep, SettingsDep
from callmemory.api.errors import ErrorBody, error_response, responses
from callmemory.core import storable
from callmemory.core.errors import MalformedBody, NotEnabled
from callmemory.core.events import Reply
from callmemory.core.withheld import is_withheld
from callmemory.observability.context import bind_call
from callmemory.observability.metrics import event_kind
from callmemory.platforms.twilio import examples, signature, wire
from callmemory.settings import Settings

log = logging.getLogger(__name__)

PREFIX: Final = "/twilio"
router = APIRouter(prefix=PREFIX, tags=["twilio"])

_ERRORS: Final = {
    **responses(400, 409, 413, 422, 503),
    403: error_response(
        "No valid X-Twilio-Signature for the public URL: refused, nothing stored",
        ErrorBody(error="forbidden", detail="`X-Twilio-Signature` is missing"),
    ),
    404: error_response(
        "CALLMEMORY_TWILIO_AUTH_TOKEN is not set: the Twilio routes are off",
        ErrorBody(error="not_found", detail="Twilio is off: set CALLMEMORY_TWILIO_AUTH_TOKEN"),
    ),
}


async def _signed_form(request: Request, settings: Settings) -> dict[str, str]:
    """The request's form fields, once its signature shows that Twilio sent them."""
    token = settings.twilio_auth_token
    if token is None:
        raise NotEnabled("Twilio is off: set CALLMEMORY_TWILIO_AUTH_TOKEN")
    body = await request.body()  # within the limit: see api.body.BodyLimit
    try:
        # Blank fields kept: Twilio signs them too.
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise MalformedBody("the body is not form-encoded UTF-8") from exc
    signature.check(request, form, token.get_secret_value(), settings.twilio_public_url)
    for name, value in form.items():
        storable.check_text(value, name)
    return form


def _turn_url(request: Request, settings: Settings, turn: int) -> str:
    base = settings.twilio_public_url or str(request.base_url)
    return f"{base.rstrip('/')}{PREFIX}/gather?turn={turn}"


def _twiml(request: Request, settings: Settings, reply: Reply, turn: int) -> Response:
    body = wire.twiml(
        reply,
        _turn_url(request, settings, turn),
        voice=settings.twilio_voice,
        language=settings.twilio_language,
        goodbye=settings.twilio_goodbye,
    )
    return Response(body, media_type="text/xml")


@router.post(
    "/voice",
    summary="Twilio's Voice URL: a call comes in, answered with the greeting in a speech <Gather>",
    description=(
        "Set as the number's Voice webhook (HTTP POST). The greeting is built from the caller's memory "
        "(shared with the other platforms by bot number and caller number). A withheld caller ID "
        "(`anonymous`, `+266696687`...) is answered as a new caller and remembered under this call alone."
    ),
    responses={
        200: examples.twiml_answer("TwiML: the greeting, then listening", examples.GREETINGS),
        **_ERRORS,
    },
    openapi_extra=examples.request_body(("CallSid", "From", "To"), examples.VOICE_REQUESTS),
)
async def voice(request: Request, settings: SettingsDep, calls: CallsDep, metrics: MetricsDep) -> Response:
    with metrics.webhook(wire.PLATFORM) as seen:
        form = await _signed_form(request, settings)
        event = wire.call_started(form)
        seen.type = event_kind(event)
        bind_call(event.call.call_id)
        if is_withheld(form.get("From")):
            log.info("call %s: caller ID withheld; remembered under this call alone", event.call.call_id)
        opened = await calls.open_call(event)
        seen.outcome = "answered"
    return _twiml(request, settings, Reply(say=opened.greeting), turn=1)


@router.post(
    "/gather",
    summary="A speech <Gather>'s action: what the caller said, answered inside the next <Gather>",
    description=(
        "Twilio calls the action URL that the previous answer gave it, `turn` included. (CallSid, turn) "
        "identifies the speech result: a redelivery is recorded once and answered with the same text."
    ),
    responses={200: examples.twiml_answer("TwiML: the answer, then listening", examples.ANSWERS), **_ERRORS},
    openapi_extra=examples.request_body(("CallSid", "From", "SpeechResult"), examples.GATHER_REQUESTS),
)
async def gather(
    request: Request,
    turn: Annotated[int, Query(ge=1, le=2**31 - 1, description="Set by the service: the turn's number.")],
    settings: SettingsDep,
    calls: CallsDep,
    metrics: MetricsDep,
) -> Response:
    with metrics.webhook(wire.PLATFORM) as seen:
        form = await _signed_form(request, settings)
        event = wire.caller_spoke(form, turn)
        seen.type = event_kind(event)
        bind_call(event.call.call_id)
        if wire.heard_nothing(form):
            # Only sent under actionOnEmptyResult, which we do not set; listen again for the same turn.
            seen.outcome = "ignored"
            return _twiml(request, settings, Reply(say=""), turn=turn)
        result = await calls.handle(event)
        seen.outcome = "answered" if isinstance(result, Reply) else str(result)
    if not isinstance(result, Reply):
        # A redelivery of a turn whose call has ended meanwhile: nothing more to say.
        return _twiml(request, settings, Reply(say="", then="hangup"), turn=turn)
    return _twiml(request, settings, result, turn=turn + 1)


@router.post(
    "/status",
    status_code=204,
    summary="Twilio's status callback: an ended call is archived",
    description=(
        "Set as the number's Status Callback URL (HTTP POST). A final status (completed, busy, failed, "
        "no-answer, canceled) archives the call; repeating it changes nothing. Other statuses are "
        "acknowledged and ignored."
    ),
    responses={
        204: {
            "description": "Acknowledged (archived, already archived, or nothing to do)",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": ""}},
        },
        **_ERRORS,
    },
    openapi_extra=examples.request_body(("CallSid", "CallStatus"), examples.STATUS_REQUESTS),
)
async def status(request: Request, settings: SettingsDep, calls: CallsDep, metrics: MetricsDep) -> Response:
    with metrics.webhook(wire.PLATFORM) as seen:
        event = wire.call_ended(await _signed_form(request, settings))
        if event is None:
            seen.type = seen.outcome = "ignored"
        else:
            seen.type = event_kind(event)
            bind_call(event.call.call_id)
            seen.outcome = str(await calls.handle(event))
    return Response(status_code=204)
