"""The seed webhook format: flat JSON events in, `{"actions": [...]}` out.

{"type": "call.ringing", "call_id": "c-123", "from": "+14155551234", "to": "+14155550000"}
{"type": "call.speech_recognized", "call_id": "c-123", "from": "+14155551234", "speech": "..."}
{"type": "call.hangup", "call_id": "c-123", "from": "+14155551234"}
{"type": "call.caller_verified", "call_id": "c-123", "from": "+14155551234"}

A ringing may say `"caller_verified": true` when the platform vouches for the caller's number; the
`call.caller_verified` event says the bot checked the caller during the call (docs/caller-trust.md).
Any event may carry `event_id` (the platform's id of the delivery's event, the same on every retry) and
a speech event `sequence` (its position in the call). Redeliveries are recognised by `event_id`, else by
(call, `sequence`): a repeated speech event gets the first delivery's answer back, without a second turn
or a second LLM request. Ringing and hangup are idempotent by their nature (by call id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from callmemory.core.errors import InvalidEvent
from callmemory.core.events import (
    CallEnded,
    CallerSpoke,
    CallerVerified,
    CallEvent,
    CallRef,
    CallStarted,
    EndOutcome,
    Reply,
    Verification,
)
from callmemory.core.identity import PHONE_SCHEMA
from callmemory.core.storable import SPOKEN_PATTERN
from callmemory.core.trust import Trust
from callmemory.platforms.body import json_object

PLATFORM: Final = "seed"

# Any printable ASCII without spaces: platforms use UUIDs or short tokens, and the id becomes part of a
# Redis key.
_CALL_ID = r"^[!-~]{1,200}$"


class _Event(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    call_id: StrictStr = Field(pattern=_CALL_ID, description="The platform's id of the call.")
    from_: StrictStr = Field(
        alias="from",
        min_length=1,
        max_length=64,
        description="The caller's number: E.164 best; digits, spaces, ( ) . - and a leading + accepted.",
        json_schema_extra=PHONE_SCHEMA,  # checked with the number itself, into a 422 naming it
    )
    event_id: StrictStr | None = Field(
        default=None,
        pattern=_CALL_ID,
        description="The platform's id of this event, the same on every redelivery (deduplication).",
    )


class RingingEvent(_Event):
    """A call reaches the bot. Answered with a greeting, then listening."""

    type: Literal["call.ringing"]
    to: StrictStr | None = Field(
        default=None,
        max_length=64,
        description="The bot's number. When absent, CALLMEMORY_DEFAULT_BOT_NUMBER is used.",
        json_schema_extra=PHONE_SCHEMA,
    )
    caller_verified: bool = Field(
        default=False,
        strict=True,
        description="true when the platform vouches for the caller's number (a STIR/SHAKEN A attestation "
        "it checked, a number it authenticated). Only a signed webhook should send it: the bot's "
        "disclosure policy (CALLMEMORY_DISCLOSURE) may then open the caller's memory to this call.",
    )

    def to_event(self) -> CallEvent:
        trust = Trust.VERIFIED if self.caller_verified else Trust.UNVERIFIED
        return CallStarted(CallRef(PLATFORM, self.call_id), self.from_, self.to, trust)


class SpeechEvent(_Event):
    """The platform recognised what the caller said. Answered with the bot's reply, then listening."""

    type: Literal["call.speech_recognized"]
    speech: StrictStr = Field(
        description="Recognised text; 1 to CALLMEMORY_MAX_SPEECH_CHARS characters once runs of whitespace "
        "are one space.",
        json_schema_extra={"pattern": SPOKEN_PATTERN},  # checked by the core, into a 422 naming `speech`
    )
    sequence: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="The event's position in the call; without `event_id`, (call, sequence) is its identity.",
    )
    to: StrictStr | None = Field(
        default=None,
        max_length=64,
        description="The bot's number; lets a call whose ringing was missed or whose state was lost go on.",
        json_schema_extra=PHONE_SCHEMA,
    )

    def to_event(self) -> CallEvent:
        key = f"id:{self.event_id}" if self.event_id else None
        if key is None and self.sequence is not None:
            key = f"seq:{self.sequence}"
        return CallerSpoke(
            CallRef(PLATFORM, self.call_id), self.from_, self.speech, event_key=key, bot_number=self.to
        )


class HangupEvent(_Event):
    """The call ended. Its transcript is archived; repeating the event changes nothing."""

    type: Literal["call.hangup"]
    reason: StrictStr | None = Field(default=None, max_length=64, description="Why the call ended, if known.")

    def to_event(self) -> CallEvent:
        return CallEnded(CallRef(PLATFORM, self.call_id), self.from_, self.reason)


class CallerVerifiedEvent(_Event):
    """The bot checked the caller during the call (a PIN, a one-time code). From its next turn on, the
    call reads the caller's memory, and its turns, those said before included, are the caller's."""

    type: Literal["call.caller_verified"]

    def to_event(self) -> CallEvent:
        return CallerVerified(CallRef(PLATFORM, self.call_id), self.from_)


_MODELS: Final[dict[str, type[RingingEvent | SpeechEvent | HangupEvent | CallerVerifiedEvent]]] = {
    "call.ringing": RingingEvent,
    "call.speech_recognized": SpeechEvent,
    "call.hangup": HangupEvent,
    "call.caller_verified": CallerVerifiedEvent,
}


class Action(BaseModel):
    type: Literal["talk", "listen", "hangup"]
    text: str | None = None


class ActionsResponse(BaseModel):
    actions: list[Action]


class AckResponse(BaseModel):
    status: str = Field(
        description="archived, already_archived (also for a redelivered speech event whose call ended "
        "before its answer was ready), archive_pending (the archive is down; the call is kept "
        "and archived when it is back: no retry needed), unknown_call or ignored; for "
        "call.caller_verified: verified or already_verified"
    )
    reason: str | None = None


def _describe(error: ValidationError) -> tuple[str, str | None]:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    return (f"`{field}`: {first['msg']}" if field else str(first["msg"])), field


@dataclass(frozen=True, slots=True)
class Ignored:
    """An event type this format does not use: acknowledged, nothing else."""

    kind: str


def parse(body: bytes) -> CallEvent | Ignored:
    data = json_object(body)
    kind = data.get("type")
    if kind is None:
        raise InvalidEvent("`type` is missing", field="type")
    if not isinstance(kind, str):
        raise InvalidEvent("`type` must be a string", field="type")
    model = _MODELS.get(kind)
    if model is None:
        return Ignored(kind)
    try:
        return model.model_validate(data).to_event()
    except ValidationError as exc:
        message, field = _describe(exc)
        raise InvalidEvent(message, field=field) from exc


def render(result: Reply | EndOutcome | Verification | Ignored) -> dict[str, Any]:
    if isinstance(result, Ignored):
        return AckResponse(status="ignored", reason=f"event type {result.kind!r} is not used").model_dump()
    if isinstance(result, EndOutcome | Verification):
        return AckResponse(status=str(result)).model_dump(exclude_none=True)
    # ActionsResponse's JSON, written out: this is every ringing's and speech turn's answer, and the
    # models' validation and dump cost more than the rest of this module's work on it.
    return {"actions": [{"type": "talk", "text": result.say}, {"type": result.then}]}


# -- OpenAPI documentation ------------------------------------------------------------------------
REQUEST_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "ringing": {
        "summary": "A call rings",
        "value": {"type": "call.ringing", "call_id": "c-123", "from": "+14155551234", "to": "+14155550000"},
    },
    "speech": {
        "summary": "The caller said something",
        "value": {
            "type": "call.speech_recognized",
            "call_id": "c-123",
            "from": "+14155551234",
            "speech": "I need help resetting my password.",
            "event_id": "ev-7f3a",
        },
    },
    "hangup": {
        "summary": "The call ended",
        "value": {"type": "call.hangup", "call_id": "c-123", "from": "+14155551234"},
    },
    "ringing, caller verified": {
        "summary": "A call rings, and the platform vouches for the caller's number",
        "value": {
            "type": "call.ringing",
            "call_id": "c-124",
            "from": "+14155551234",
            "to": "+14155550000",
            "caller_verified": True,
        },
    },
    "caller verified": {
        "summary": "The bot checked the caller during the call (a PIN, a one-time code)",
        "value": {"type": "call.caller_verified", "call_id": "c-123", "from": "+14155551234"},
    },
    "unknown": {
        "summary": "Any other event type (acknowledged, ignored)",
        "value": {"type": "call.dtmf", "call_id": "c-123", "from": "+14155551234", "digits": "1"},
    },
}

RESPONSE_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "greeting (returning caller)": {
        "value": {
            "actions": [
                {
                    "type": "talk",
                    "text": 'Welcome back! Last time you told me: "I need help resetting my password". '
                    "Is that what you are calling about, or is there something new?",
                },
                {"type": "listen"},
            ]
        }
    },
    "answer to speech": {
        "value": {
            "actions": [
                {"type": "talk", "text": "Sure. I've sent a reset link to the email on your account."},
                {"type": "listen"},
            ]
        }
    },
    "hangup archived": {"value": {"status": "archived"}},
    "hangup repeated": {"value": {"status": "already_archived"}},
    "hangup while the archive is down": {"value": {"status": "archive_pending"}},
    "caller verified": {"value": {"status": "verified"}},
    "unknown event type": {"value": {"status": "ignored", "reason": "event type 'call.dtmf' is not used"}},
}


_OTHER_EVENT: Final[dict[str, Any]] = {
    "title": "OtherEvent",
    "description": "Any other event type: acknowledged with 200 `ignored`, whatever else it carries.",
    "type": "object",
    "properties": {"type": {"type": "string", "not": {"enum": list(_MODELS)}}},
    "required": ["type"],
}


def request_schema() -> dict[str, Any]:
    # Each model's schema is flat (no $defs), so they can be inlined into the OpenAPI document.
    return {"oneOf": [*(m.model_json_schema(by_alias=True) for m in _MODELS.values()), _OTHER_EVENT]}


def require_bot_number(request_body: dict[str, Any]) -> None:
    """Make `to` required in ringing's schema (in an OpenAPI requestBody as `request_schema` made it): so
    it is when CALLMEMORY_DEFAULT_BOT_NUMBER is not set to stand in for it."""
    schema = request_body["content"]["application/json"]["schema"]
    ringing = next(s for s in schema["oneOf"] if s["title"] == RingingEvent.__name__)
    ringing["required"] = [*ringing["required"], "to"]
    ringing["properties"]["to"] = {
        "type": "string",
        "maxLength": 64,
        **PHONE_SCHEMA,
        "description": "The bot's number (required: no default bot number is set).",
    }
