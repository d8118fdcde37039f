"""The integrator API (/v1): a caller's memory for bots that do not use our webhook, their calls,
their data, and its erasure.

A caller is addressed by (bot number, caller number) in the path and hashed exactly as the webhook
hashes them. A key scoped to one bot gets 404 for every other bot's caller, whether or not that caller
exists: the same answer as for an unknown caller, so the API is no oracle for who called whom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, Field

from callmemory.api.auth import IntegratorDep
from callmemory.api.body import StorableInputRoute
from callmemory.api.deps import ServicesDep
from callmemory.api.errors import example, responses
from callmemory.conversation.brief import memory_brief
from callmemory.core.errors import CallAlreadyEnded, CallNotStarted, InvalidEvent, NotFound
from callmemory.core.events import CallRef, EndOutcome, Role
from callmemory.core.identity import PHONE_SCHEMA, CallerId
from callmemory.core.storable import SPOKEN_PATTERN
from callmemory.memory.erasure import ErasureReceipt
from callmemory.memory.records import CallerExport, CallInfo, TurnInfo

PLATFORM: Final = "api"  # the platform of calls recorded through this API

router = APIRouter(prefix="/v1", tags=["integrator API"], route_class=StorableInputRoute)

_CALLER = "/bots/{bot_number}/callers/{caller_number}"
BotNumber = Annotated[
    str,
    Path(
        description="The bot's phone number, E.164 (URL-encode the +)",
        examples=["+14155550000"],
        json_schema_extra=PHONE_SCHEMA,  # checked with the number itself, into a 422 naming it
    ),
]
CallerNumber = Annotated[
    str,
    Path(
        description="The caller's phone number, E.164",
        examples=["+14155551234"],
        json_schema_extra=PHONE_SCHEMA,
    ),
]
_CALL_ID = r"^[!-~]{1,200}$"
CallId = Annotated[str, Path(pattern=_CALL_ID, description="Your id of the call (a UUID is best)")]


_CONTEXT_EXAMPLE: Final[dict[str, Any]] = {
    "messages": [
        {
            "role": "system",
            "content": "You are a helpful phone assistant. ...\n\nThis caller has called 3 time(s) before. "
            "...\n\nSummary of your earlier calls with this caller: Ada, account 99812, router drops every "
            "evening; a technician visit was promised.",
        },
        {"role": "user", "content": "Hi, it's me again."},
    ],
    "memory_tokens": 212,
    "budget_tokens": 2000,
    "returning": True,
    "greeting": "Welcome back, Ada! Did the technician fix your router?",
}


_RECEIPT_EXAMPLE: Final[dict[str, Any]] = {
    "bot_number": "+14155550000",
    "caller_number": "+14155551234",
    "erased_at": "2026-11-25T08:00:00Z",
    "deleted": {
        "caller": True,
        "calls": 3,
        "turns": 41,
        "call_summaries": 3,
        "caller_summary": True,
        "profile": True,
        "prepared_greeting": True,
        "summary_jobs": 0,
        "redis_keys": 4,
        "live_calls": 0,
    },
    "tombstone": "kept: nothing of this caller from before erased_at is stored again, not by a queued "
    "summary, a retried hangup or a late webhook",
}
_CALL_EXAMPLE: Final[dict[str, Any]] = {
    "platform": "seed",
    "call_id": "c-1",
    "started_at": "2026-11-24T17:02:11Z",
    "ended_at": "2026-11-24T17:05:40Z",
    "end_reason": "caller_hangup",
    "turn_count": 7,
    "summary": "Router in the attic drops every evening; a technician visit was promised.",
}
_TURNS_EXAMPLE: Final[list[dict[str, Any]]] = [
    {
        "seq": 1,
        "role": "bot",
        "text": "Hello! How can I help you today?",
        "at": "2026-11-24T17:02:11Z",
        "fallback": False,
    },
    {
        "seq": 2,
        "role": "caller",
        "text": "My router drops the connection every evening.",
        "at": "2026-11-24T17:02:15Z",
        "fallback": False,
    },
]
_CALLER_EXAMPLE: Final[dict[str, Any]] = {
    "bot_number": "+14155550000",
    "caller_number": "+14155551234",
    "first_seen_at": "2026-11-02T09:14:03Z",
    "last_seen_at": "2026-11-24T17:05:40Z",
    "call_count": 3,
    "last_topic": "My router drops the connection every evening",
    "summary": "Ada, account 99812. Her router drops most evenings; a technician visit was promised.",
    "profile": {
        "name": "Ada",
        "open_issues": ["router drops every evening"],
        "promises": [],
        "preferences": [],
    },
    "next_greeting": "Welcome back, Ada! Did the technician fix your router?",
}
_TURN_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "the caller spoke": {"value": {"role": "caller", "text": "My router is down again."}},
    "your bot answered": {"value": {"role": "bot", "text": "Sorry to hear that. Let me check your line."}},
}


# -- models ----------------------------------------------------------------------------------------
class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class MemoryContext(BaseModel):
    messages: list[ChatMessage] = Field(
        description="Ready for a chat completions request: the system prompt with the caller's memory, "
        "then the live call's turns (when `call_id` is given). Append the caller's new words and send."
    )
    memory_tokens: int = Field(description="Size of the memory in these messages (cl100k_base tokens).")
    budget_tokens: int = Field(description="The hard limit the memory is kept under.")
    returning: bool = Field(description="Whether the caller has called this bot before.")
    greeting: str = Field(description="What to greet the caller with: prepared after their last call.")

    model_config = {"json_schema_extra": {"examples": [_CONTEXT_EXAMPLE]}}


class NewTurn(BaseModel):
    role: Literal["caller", "bot"] = Field(description="Who spoke: the caller or your bot.")
    text: str = Field(
        min_length=1,
        description="What was said (1 to CALLMEMORY_MAX_SPEECH_CHARS characters once runs of whitespace "
        "are one space).",
        json_schema_extra={"pattern": SPOKEN_PATTERN},  # checked with its length, into a 422 naming `text`
    )

    model_config = {
        "json_schema_extra": {"examples": [{"role": "caller", "text": "My router is down again."}]}
    }


class TurnRecorded(BaseModel):
    call_id: str
    seq: int = Field(description="The turn's position in the call, from 1.")


class CallEnd(BaseModel):
    reason: str | None = Field(default=None, max_length=64, description="Why the call ended, if known.")


class CallEndResult(BaseModel):
    status: str = Field(description="archived, already_archived or unknown_call")


class CallOut(BaseModel):
    platform: str = Field(description="Where the call came from: seed, voipbin, api, ...")
    call_id: str
    started_at: datetime
    ended_at: datetime
    end_reason: str | None
    turn_count: int
    summary: str | None = Field(description="What the call was about (written shortly after it ended).")

    @classmethod
    def of(cls, info: CallInfo) -> CallOut:
        return cls(**asdict(info))


class TurnOut(BaseModel):
    seq: int
    role: Literal["caller", "bot"]
    text: str
    at: datetime
    fallback: bool = Field(description="The bot said the fallback line because the LLM failed.")

    @classmethod
    def of(cls, info: TurnInfo) -> TurnOut:
        return cls.model_validate(asdict(info))


class CallList(BaseModel):
    calls: list[CallOut] = Field(description="Newest first.")


class Transcript(BaseModel):
    call: CallOut
    turns: list[TurnOut]


class CallerOut(BaseModel):
    bot_number: str
    caller_number: str
    first_seen_at: datetime
    last_seen_at: datetime
    call_count: int
    last_topic: str | None
    summary: str | None = Field(description="The rolling summary of all their calls.")
    profile: dict[str, Any] = Field(description="name, open_issues, promises, preferences")
    next_greeting: str | None


class Export(BaseModel):
    caller: CallerOut
    calls: list[Transcript] = Field(description="Oldest first, each with every turn.")

    @classmethod
    def of(cls, bot_number: str, caller_number: str, data: CallerExport) -> Export:
        return cls(
            caller=CallerOut(bot_number=bot_number, caller_number=caller_number, **asdict(data.caller)),
            calls=[
                Transcript(call=CallOut.of(c), turns=[TurnOut.of(t) for t in turns])
                for c, turns in data.calls
            ],
        )


class Deleted(BaseModel):
    caller: bool
    calls: int
    turns: int
    call_summaries: int
    caller_summary: bool
    profile: bool
    prepared_greeting: bool
    summary_jobs: int = Field(description="Queued summaries that will now never run.")
    redis_keys: int
    live_calls: int = Field(
        description="Calls in progress that were cut off; their later events are refused."
    )


class ErasureReceiptOut(BaseModel):
    bot_number: str
    caller_number: str
    erased_at: datetime
    deleted: Deleted
    tombstone: str = Field(
        default="kept: nothing of this caller from before erased_at is stored again, not by a queued "
        "summary, a retried hangup or a late webhook"
    )

    @classmethod
    def of(cls, caller_number: str, receipt: ErasureReceipt) -> ErasureReceiptOut:
        return cls(
            bot_number=receipt.caller.bot_number,
            caller_number=caller_number,
            erased_at=receipt.erased_at,
            deleted=Deleted(
                **asdict(receipt.rows), redis_keys=receipt.hot.keys, live_calls=receipt.hot.live_calls
            ),
        )

    model_config = {"json_schema_extra": {"examples": [_RECEIPT_EXAMPLE]}}


_BRIEF_EXAMPLE: dict[str, Any] = {
    "bot_number": "+14155550000",
    "caller_number": "+14155551234",
    "returning": True,
    "call_count": 2,
    "last_topic": "my router drops every evening",
    "profile": {"name": "Ada", "open_issues": ["router drops every evening"]},
    "summary": "Ada, account 99812: router drops every evening; a technician was promised.",
    "recent_calls": [
        {
            "call_id": "c-2",
            "started_at": "2026-11-24T18:02:00Z",
            "summary": "Router dropped again; technician visit booked for Friday.",
        }
    ],
    "brief": 'This caller has called 2 time(s) before. Last time they said: "my router '
    'drops every evening".\n\nWhat you know about this caller: Name: Ada. ...',
}


class EarlierCall(BaseModel):
    call_id: str
    started_at: datetime
    summary: str


class MemoryBrief(BaseModel):
    bot_number: str
    caller_number: str
    returning: bool = Field(description="False: nothing is remembered (never called, or erased).")
    call_count: int = Field(description="Calls of this caller that ended and were archived.")
    last_topic: str | None = Field(description="What they called about last time, in their own words.")
    profile: dict[str, Any] = Field(description="name, open_issues, promises, preferences")
    summary: str | None = Field(description="The rolling summary of all their calls.")
    recent_calls: list[EarlierCall] = Field(description="Summaries of their latest calls, newest first.")
    brief: str = Field(
        description="All of it as one text, at most `max_chars` long: the memory context the bot's own LLM "
        "is given (profile, summaries, the end of earlier conversations), oldest material dropped first."
    )

    model_config = {"json_schema_extra": {"examples": [_BRIEF_EXAMPLE]}}


# -- the addressed caller --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Addressed:
    """The caller a request's path names, checked against the key's scope."""

    id: CallerId
    bot_number: str  # as written in the path
    number: str  # as written in the path

    def not_found(self) -> NotFound:
        # One message for "unknown" and "not yours": nothing in the answer tells them apart.
        return NotFound(f"no caller {self.number} of bot {self.bot_number} for this key")


def address(
    bot_number: BotNumber, caller_number: CallerNumber, services: ServicesDep, who: IntegratorDep
) -> Addressed:
    caller = Addressed(services.memory.address(bot_number, caller_number), bot_number, caller_number)
    if who.bot_number is not None and services.memory.address(who.bot_number, caller_number) != caller.id:
        raise caller.not_found()
    return caller


CallerDep = Annotated[Addressed, Depends(address)]


# -- routes ----------------------------------------------------------------------------------------
@router.get(
    f"{_CALLER}/context",
    summary="The caller's memory as ready-to-use LLM messages",
    description="For bots that run their own conversation loop (Pipecat, LiveKit, Twilio "
    "ConversationRelay, ...): the system prompt with what is remembered of the caller, under the "
    "memory token budget, plus the live call's turns when `call_id` names a call recorded through "
    "this API. A caller never seen before gets the bare system prompt.",
    responses={200: example("The memory context", _CONTEXT_EXAMPLE), **responses(401, 404, 422, 503)},
)
async def read_context(
    *,
    caller: CallerDep,
    services: ServicesDep,
    call_id: Annotated[
        str | None, Query(pattern=_CALL_ID, description="A live call of this API whose turns to include")
    ] = None,
) -> MemoryContext:
    memory = await services.memory.memory_for(caller.id)
    prompt = services.prompt.build(memory, call_id)
    return MemoryContext(
        messages=[ChatMessage(role=m.role, content=m.content) for m in prompt.messages],
        memory_tokens=prompt.memory_tokens,
        budget_tokens=services.settings.memory_context_tokens,
        returning=memory.is_returning,
        greeting=await services.memory.greeting_for(memory, services.greetings),
    )


@router.post(
    f"{_CALLER}/live/{{call_id}}/turns",
    summary="Append a turn to a live call",
    description="Records what the caller or your bot said, exactly as webhook turns are recorded. The "
    "first turn starts the call; end it with `.../end`, which archives it (and queues its summary).",
    responses={
        200: example("The turn was recorded", {"call_id": "c-1", "seq": 3}),
        **responses(400, 401, 404, 409, 413, 422, 503),
    },
)
async def append_turn(
    *,
    caller: CallerDep,
    call_id: CallId,
    turn: Annotated[NewTurn, Body(openapi_examples=_TURN_EXAMPLES)],
    services: ServicesDep,
) -> TurnRecorded:
    text = " ".join(turn.text.split())
    if not text or len(text) > services.settings.max_speech_chars:
        raise InvalidEvent(
            f"`text` must have 1 to {services.settings.max_speech_chars} characters", field="text"
        )
    call = CallRef(PLATFORM, call_id)
    await services.memory.begin_call(call, caller.number, caller.id.bot_number)
    recorded, _ = await services.memory.record_turn(call, caller.id, Role(turn.role), text)
    return TurnRecorded(call_id=call_id, seq=recorded.seq)


@router.post(
    f"{_CALLER}/live/{{call_id}}/end",
    summary="End a live call: archive it",
    description="Archives the call's turns to Postgres and queues its summary. Idempotent, like a webhook "
    "hangup: a repeat answers `already_archived`, a call never started `unknown_call`, and "
    "`archive_pending` means Postgres is down and the call waits in Redis for the flusher.",
    responses={
        200: example("What happened to the call", {"status": "archived"}),
        **responses(400, 401, 404, 409, 413, 422, 503),
    },
)
async def end_call(
    *,
    caller: CallerDep,
    call_id: CallId,
    services: ServicesDep,
    end: Annotated[
        CallEnd | None, Body(openapi_examples={"with a reason": {"value": {"reason": "caller_hangup"}}})
    ] = None,
) -> CallEndResult:
    call = CallRef(PLATFORM, call_id)
    try:
        owner = await services.memory.locate(call, caller.number)
    except (CallNotStarted, CallAlreadyEnded):
        owner = caller.id  # end_call answers these: unknown call, already archived
    if owner != caller.id:  # the same number calling another bot, under the same call id
        raise NotFound(f"no live call {call_id} of this caller")
    outcome: EndOutcome = await services.memory.end_call(call, caller.number, end.reason if end else None)
    return CallEndResult(status=str(outcome))


@router.get(
    f"{_CALLER}/calls",
    summary="List the caller's calls",
    description="The caller's archived calls, newest first, each with its summary once the summary job has "
    "run. Page with `before` (the `started_at` of the last call of the previous page).",
    responses={200: example("The calls", {"calls": [_CALL_EXAMPLE]}), **responses(401, 404, 422, 503)},
)
async def list_calls(
    *,
    caller: CallerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[datetime | None, Query(description="Only calls that started before this")] = None,
) -> CallList:
    calls = await services.records.calls(caller.id, limit=limit, before=before)
    if calls is None:
        raise caller.not_found()
    return CallList(calls=[CallOut.of(c) for c in calls])


@router.get(
    f"{_CALLER}/calls/{{platform}}/{{call_id}}",
    summary="Read a call's transcript",
    description="One archived call of the caller with every turn, in spoken order. `platform` is where "
    "the call came from (`seed`, `voipbin`, `api`), `call_id` the platform's id of it.",
    responses={
        200: example("The call and its turns", {"call": _CALL_EXAMPLE, "turns": _TURNS_EXAMPLE}),
        **responses(401, 404, 422, 503),
    },
)
async def read_transcript(
    *,
    caller: CallerDep,
    platform: Annotated[str, Path(max_length=32, examples=["seed"])],
    # Any id a platform may give a call (VoIPBin's are not held to this API's pattern for its own).
    call_id: Annotated[str, Path(min_length=1, max_length=200, description="The platform's id of the call")],
    services: ServicesDep,
) -> Transcript:
    found = await services.records.transcript(caller.id, platform, call_id)
    if found is None:
        raise NotFound(f"no call {platform}/{call_id} of this caller")
    call, turns = found
    return Transcript(call=CallOut.of(call), turns=[TurnOut.of(t) for t in turns])


@router.get(
    f"{_CALLER}/export",
    summary="Export all of the caller's data as JSON",
    description="What the archive holds: the caller's summary, profile and prepared greeting, and "
    "every call with every turn.",
    responses={
        200: example(
            "Everything stored about the caller",
            {"caller": _CALLER_EXAMPLE, "calls": [{"call": _CALL_EXAMPLE, "turns": _TURNS_EXAMPLE}]},
        ),
        **responses(401, 404, 422, 503),
    },
)
async def export_caller(caller: CallerDep, services: ServicesDep) -> Export:
    data = await services.records.export(caller.id)
    if data is None:
        raise caller.not_found()
    return Export.of(caller.id.bot_number, caller.number, data)


@router.delete(
    _CALLER,
    summary="Erase the caller",
    description="Deletes everything of the caller in Postgres and Redis — calls, turns, summaries, "
    "profile, prepared greeting, queued summary jobs, live calls — in one request, and returns a "
    "receipt. A tombstone keeps a queued job, a retried hangup or a late webhook from writing any of it "
    "again. Repeating the request is harmless.",
    responses={200: example("The erasure receipt", _RECEIPT_EXAMPLE), **responses(401, 404, 422, 503)},
)
async def erase_caller(caller: CallerDep, services: ServicesDep) -> ErasureReceiptOut:
    return ErasureReceiptOut.of(caller.number, await services.eraser.erase(caller.id))


@router.get(
    f"{_CALLER}/brief",
    summary="What is remembered of the caller, for a person or an agent to read",
    description="The caller's profile, rolling summary, last topic and recent call summaries, and the "
    "same memory as one bounded text (the memory brief a platform's own AI is given). A caller never "
    "seen, or erased, gets `returning: false` and a brief that says nothing is remembered.",
    responses={
        200: example("What is remembered", _BRIEF_EXAMPLE),
        **responses(401, 404, 422, 503),
    },
)
async def read_brief(
    *,
    caller: CallerDep,
    services: ServicesDep,
    max_chars: Annotated[int, Query(ge=100, le=20_000, description="Upper bound of `brief`")] = 4000,
) -> MemoryBrief:
    memory = await services.memory.memory_for(caller.id)
    return MemoryBrief(
        bot_number=caller.id.bot_number,
        caller_number=caller.number,
        returning=memory.is_returning,
        call_count=memory.call_count,
        last_topic=memory.last_topic,
        profile=dict(memory.profile),
        summary=memory.summary,
        recent_calls=[
            EarlierCall(call_id=s.call_id, started_at=s.started_at, summary=s.text)
            for s in reversed(memory.call_summaries)
        ],
        brief=memory_brief(services.prompt, memory, max_chars),
    )
