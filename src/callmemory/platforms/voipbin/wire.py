"""VoIPBin's wire format: signed event webhooks in, `fetch` action lists out.

Facts from VoIPBin's source (../shared/voipbin-contract.md): an event is `{"type", "data"}` with no id of
its own, signed as `X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`; its response body
is ignored. Empty strings and unset times are omitted, unset ids are the zero UUID, and times come both
as RFC 3339 and as `2022-04-11 00:23:53.636000`. A transcript names neither call nor phone number, only
its transcribe; a managed AI's message names only its activeflow. Nothing here touches a store.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callmemory.core.errors import InvalidEvent
from callmemory.core.events import CallRef, Role
from callmemory.platforms.body import json_object
from callmemory.platforms.voipbin.settings import VoipbinBot

PLATFORM: Final = "voipbin"
ZERO_UUID: Final = "00000000-0000-0000-0000-000000000000"
SIGNATURE_HEADER: Final = "X-VoIPBIN-Signature"

_FRACTION = re.compile(r"(\.\d{6})\d+")


_GO_ZERO: Final = datetime(1, 1, 1, tzinfo=UTC)


def _go_time(value: object) -> datetime | None:
    """Either of VoIPBin's time formats, as an aware UTC datetime; None when unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    # Go may print nanoseconds; Python's parser stops at microseconds.
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_time(value: object) -> datetime | None:
    """A wall-clock time; None for unset or Go's zero time."""
    parsed = _go_time(value)
    return None if parsed is None or parsed.year <= 1 else parsed


def parse_offset(value: object) -> timedelta | None:
    """A `tm_transcript`: an offset into the transcription, printed as Go's zero time plus the offset."""
    parsed = _go_time(value)
    return parsed - _GO_ZERO if parsed is not None and parsed.year == 1 else None


def signature(secret: bytes, body: bytes) -> str:
    """The header value VoIPBin sends for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_problem(secret: bytes, body: bytes, header: str | None) -> str | None:
    """Why the header does not sign the body, or None when it does."""
    if not header:
        return f"the {SIGNATURE_HEADER} header is missing"
    if not header.startswith("sha256="):
        return f"the {SIGNATURE_HEADER} header is not of the form sha256=<hex>"
    if not hmac.compare_digest(header.strip().encode(), signature(secret, body).encode()):
        return f"the {SIGNATURE_HEADER} header does not match the body"
    return None


def restore_plus(number: str) -> str:
    """Undo VoIPBin's unencoded `${...}` substitution, which lets a query string turn `+` into a space."""
    stripped = number.strip()
    if number[:1] == " " and stripped.isdigit():
        return "+" + stripped
    return stripped


def fetch_parties(destination: str, source: str, direction: str | None) -> tuple[str, str]:
    """(bot, caller) from a fetch URL's `${voipbin.call.destination.target}`, `${...source.target}` and
    `${voipbin.call.direction}`: an outgoing call is made from the bot's number to the person called."""
    destination, source = restore_plus(destination), restore_plus(source)
    return (source, destination) if (direction or "").strip() == "outgoing" else (destination, source)


# -- events ---------------------------------------------------------------------------------------
def _id_or_none(value: object) -> object:
    return None if value in ("", ZERO_UUID) else value


def _any_time(schema: dict[str, Any]) -> None:
    # A time that cannot be read is read as unset (`parse_time`), so any value is accepted.
    schema.clear()
    schema["description"] = "Either of VoIPBin's time formats; anything else counts as unset."


class _Object(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Address(_Object):
    type: str = ""
    target: str = ""


class CallInfo(_Object):
    """`data` of call_* events: who calls whom, and the activeflow that runs the call's flow."""

    id: str = Field(min_length=1, max_length=200)
    activeflow_id: str | None = None
    source: Address = Address()
    destination: Address = Address()
    direction: str = ""
    status: str = ""
    hangup_reason: str | None = None

    _ids = field_validator("activeflow_id", mode="before")(_id_or_none)

    @property
    def call(self) -> CallRef:
        return CallRef(PLATFORM, self.id)

    @property
    def caller(self) -> str:
        # An outgoing call's "caller" is the person dialled; the bot is the side VoIPBin calls from.
        return (self.destination if self.direction == "outgoing" else self.source).target

    @property
    def bot(self) -> str:
        return (self.source if self.direction == "outgoing" else self.destination).target


class TranscribeInfo(_Object):
    """`data` of transcribe_* events: links a transcribe to the call it listens to."""

    id: str = Field(min_length=1, max_length=200)
    reference_type: str = ""
    reference_id: str | None = None
    activeflow_id: str | None = None

    _ids = field_validator("reference_id", "activeflow_id", mode="before")(_id_or_none)

    @property
    def call_id(self) -> str | None:
        return self.reference_id if self.reference_type == "call" else None


class Transcript(_Object):
    """One recognised utterance: `in` is the caller, `out` the bot. It names only its transcribe."""

    id: str = Field(min_length=1, max_length=200)
    transcribe_id: str = Field(min_length=1, max_length=200)
    direction: str = "in"
    message: str = ""
    tm_transcript: timedelta | None = Field(default=None, json_schema_extra=_any_time)
    tm_create: datetime | None = Field(default=None, json_schema_extra=_any_time)

    _times = field_validator("tm_create", mode="before")(parse_time)
    _offsets = field_validator("tm_transcript", mode="before")(parse_offset)

    @property
    def role(self) -> Role:
        return Role.BOT if self.direction == "out" else Role.CALLER

    @property
    def spoken(self) -> str | None:
        """Where it was said in the call, as a key that sorts in spoken order; None if VoIPBin did not say.

        Deliveries arrive in any order (one goroutine each, failed ones retried a second later), so
        arrival says nothing. `tm_transcript` is the offset into the transcription, the spoken position
        itself; `tm_create` (when the recogniser finished the sentence) orders ties and fills in for it.
        """
        return spoken_key(self.tm_transcript, self.tm_create)


def spoken_key(offset: timedelta | None, created: datetime | None) -> str | None:
    """Where a turn was said, as a key that sorts in spoken order: by its offset into the call, then by
    when it was made. Fixed-width digits, so that comparing the strings (as a Redis script does)
    compares the times. None without either."""
    if offset is None and created is None:
        return None
    micros = offset // timedelta(microseconds=1) if offset else 0
    made = created.timestamp() * 1_000_000 if created else 0
    return f"{micros:015d}.{int(made):017d}"


class AIMessage(_Object):
    """One message of VoIPBin's managed AI conversation. It names only its aicall and activeflow."""

    id: str = Field(min_length=1, max_length=200)
    activeflow_id: str | None = None
    aicall_id: str | None = None
    role: str = ""
    content: str = ""
    tm_create: datetime | None = Field(default=None, json_schema_extra=_any_time)

    _ids = field_validator("activeflow_id", "aicall_id", mode="before")(_id_or_none)
    _times = field_validator("tm_create", mode="before")(parse_time)

    @property
    def speaker(self) -> Role | None:
        """Who said it on the phone; None for system and tool messages, which nobody heard."""
        return {"user": Role.CALLER, "assistant": Role.BOT}.get(self.role)


class Summary(_Object):
    """A VoIPBin AI summary of a call (or of something that leads to one)."""

    id: str = Field(min_length=1, max_length=200)
    reference_type: str = ""
    reference_id: str | None = None
    activeflow_id: str | None = None
    status: str = ""
    content: str = ""

    _ids = field_validator("reference_id", "activeflow_id", mode="before")(_id_or_none)


CALL_TYPES: Final = frozenset(
    {
        "call_created",
        "call_ringing",
        "call_progressing",
        "call_updated",
        "call_terminating",
        "call_hangup",
        "call_dialing",
        "call_canceling",
        "call_deleted",
    }
)
_MODELS: Final[dict[str, type[_Object]]] = {
    **dict.fromkeys(CALL_TYPES, CallInfo),
    **dict.fromkeys(("transcribe_created", "transcribe_progressing", "transcribe_done"), TranscribeInfo),
    "transcript_created": Transcript,
    "aimessage_created": AIMessage,
    "summary_created": Summary,
    "summary_updated": Summary,
}


@dataclass(frozen=True, slots=True)
class Event:
    """One delivery: its type, the parsed object (None for types not used) and its dedup key."""

    type: str
    data: Any  # one of the models above, or None
    key: str  # type + data.id + data.tm_update: the same for every redelivery of the same event
    raw: dict[str, Any]


def parse(body: bytes) -> Event:
    return parse_envelope(json_object(body))


def parse_envelope(envelope: dict[str, Any]) -> Event:
    kind = envelope.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidEvent("`type` is missing or not a string", field="type")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise InvalidEvent("`data` is missing or not an object", field="data")
    key = f"{kind}:{data.get('id', '')}:{data.get('tm_update', '')}"
    model = _MODELS.get(kind)
    if model is None:
        return Event(kind, None, key, envelope)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(("data", *(str(p) for p in first["loc"])))
        raise InvalidEvent(f"`{field}`: {first['msg']}", field=field) from exc
    return Event(kind, parsed, key, envelope)


def _data_schema(model: type[_Object]) -> dict[str, Any]:
    """A model's JSON schema with its definitions inlined, to sit inside the OpenAPI document."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    for field in schema["properties"].values():
        if "$ref" in field:
            field.update(definitions[field.pop("$ref").rsplit("/", 1)[1]])
    return schema


def _event_schema() -> dict[str, Any]:
    types_of: dict[type[_Object], list[str]] = {}
    for kind, model in _MODELS.items():
        types_of.setdefault(model, []).append(kind)
    known = [
        {
            "title": f"{model.__name__}Event",
            "type": "object",
            "properties": {"type": {"enum": sorted(kinds)}, "data": _data_schema(model)},
            "required": ["type", "data"],
        }
        for model, kinds in types_of.items()
    ]
    other = {
        "title": "OtherEvent",
        "description": "A type callmemory does not use: acknowledged with 200, whatever its `data`.",
        "type": "object",
        "properties": {
            "type": {"type": "string", "minLength": 1, "not": {"enum": sorted(_MODELS)}},
            "data": {"type": "object"},
        },
        "required": ["type", "data"],
    }
    return {"oneOf": [*known, other]}


EVENT_SCHEMA: Final = _event_schema()


class FetchRequest(_Object):
    """What VoIPBin's `fetch` action sends (it may send nothing at all with GET)."""

    activeflow_id: str | None = None
    reference_id: str | None = None

    _ids = field_validator("activeflow_id", "reference_id", mode="before")(_id_or_none)


def parse_fetch(body: bytes) -> FetchRequest:
    if not body.strip():
        return FetchRequest()
    try:
        return FetchRequest.model_validate(json_object(body))
    except ValidationError as exc:
        # The flow stops on anything but a 200 with actions, so a body we cannot read is only noted.
        raise InvalidEvent(f"the fetch body is not the expected JSON: {exc.errors()[0]['msg']}") from exc


# -- actions --------------------------------------------------------------------------------------
def action(kind: str, **option: Any) -> dict[str, Any]:
    # A fresh id per action: VoIPBin pushes the fetched actions as a stack that starts at the first id.
    return {"id": str(uuid.uuid4()), "type": kind, "option": option}


def talk(text: str, bot: VoipbinBot) -> dict[str, Any]:
    return action("talk", **speech_options(text, bot))


def speech_options(text: str, bot: VoipbinBot) -> dict[str, str]:
    """The options of a `talk`, also the body of `POST /calls/{id}/talk`."""
    options = {"text": text, "language": bot.language, "provider": bot.provider}
    if bot.voice_id:
        options["voice_id"] = bot.voice_id
    return options


MEMORY_VARIABLE: Final = "caller.memory"


def fetch_actions(bot: VoipbinBot, greeting: str, brief: str, *, sleep_ms: int) -> list[dict[str, Any]]:
    """The actions a fetch answers with, per the bot's mode."""
    if bot.mode == "managed_ai":
        return [
            action("variable_set", key=MEMORY_VARIABLE, value=brief),
            talk(greeting, bot),
            action("ai_talk", assistance_type="ai", assistance_id=bot.ai_id),
        ]
    return [
        talk(greeting, bot),
        action("transcribe_start", language=bot.language, direction="in"),
        # Holds the call open while the answers arrive through the REST API.
        action("sleep", duration=sleep_ms),
    ]
