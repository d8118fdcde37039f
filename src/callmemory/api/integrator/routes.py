"""The integrator API (/v1): a caller's memory for bots that do not use our webhook, their calls,
their data, and its erasure.

A caller is addressed by (bot number, caller number) in the path and hashed exactly as the webhook
hashes them. A key scoped to one bot gets 404 for every other bot's caller, whether or not that caller
exists: the same answer as for an unknown caller, so the API is no oracle for who called whom.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Body, Path, Query

from callmemory.api.body import StorableInputRoute
from callmemory.api.deps import ErasureDep, GreetingsDep, MemoryDep, PromptDep, RecordsDep, SettingsDep
from callmemory.api.errors import example, responses
from callmemory.api.integrator import examples
from callmemory.api.integrator.caller import CALLER_PATH, CallerDep
from callmemory.api.integrator.schemas import (
    CallEnd,
    CallEndResult,
    CallList,
    CallOut,
    CallVerified,
    ChatMessage,
    EarlierCall,
    ErasureReceiptOut,
    Export,
    MemoryBrief,
    MemoryContext,
    NewTurn,
    SearchHit,
    SearchResults,
    Transcript,
    TurnRecorded,
)
from callmemory.conversation.brief import memory_brief
from callmemory.core.errors import CallAlreadyEnded, CallNotStarted, InvalidEvent, NotFound
from callmemory.core.events import CallRef, EndOutcome, Role

PLATFORM: Final = "api"  # the platform of calls recorded through this API

router = APIRouter(prefix="/v1", tags=["integrator API"], route_class=StorableInputRoute)

_CALL_ID = r"^[!-~]{1,200}$"
_CALL_EXAMPLE: Final = {"call": {"summary": "The README's first call", "value": "c-1"}}
CallId = Annotated[
    str,
    Path(
        pattern=_CALL_ID, description="Your id of the call (a UUID is best)", openapi_examples=_CALL_EXAMPLE
    ),
]
# Any id a platform may give a call (VoIPBin's are not held to this API's pattern for its own).
PlatformCallId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="The platform's id of the call",
        openapi_examples=_CALL_EXAMPLE,
    ),
]


@router.get(
    f"{CALLER_PATH}/context",
    summary="The caller's memory as ready-to-use LLM messages",
    description="For bots that run their own conversation loop (Pipecat, LiveKit, Twilio "
    "ConversationRelay, ...): the system prompt with what is remembered of the caller, under the "
    "memory token budget, plus the live call's turns when `call_id` names a call recorded through "
    "this API. A caller never seen before gets the bare system prompt.",
    responses={200: example("The memory context", examples.CONTEXT), **responses(401, 404, 422, 503)},
)
async def read_context(
    *,
    caller: CallerDep,
    memory: MemoryDep,
    prompt: PromptDep,
    greetings: GreetingsDep,
    settings: SettingsDep,
    call_id: Annotated[
        str | None, Query(pattern=_CALL_ID, description="A live call of this API whose turns to include")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=2000,
            description="What the caller just said, to search their archive for (as the webhook does at "
            "each caller turn); default: the last caller turn of `call_id`",
        ),
    ] = None,
) -> MemoryContext:
    # A read tied to a live call follows that call's trust: one kept apart reads its own turns alone.
    read = (
        memory.memory_during(CallRef(PLATFORM, call_id), caller.id)
        if call_id is not None
        else memory.memory_for(caller.id)
    )
    if q is not None:
        # Both at once, as at a speech turn: the search does not wait for the hot memory.
        remembered, found = await asyncio.gather(read, memory.recall(caller.id, q))
    else:
        remembered = await read
        said = [t.text for t in remembered.recent if t.call_id == call_id and t.role is Role.CALLER]
        found = await memory.recall(caller.id, said[-1]) if said else ()
    if remembered.apart:
        found = ()
    built = prompt.build(replace(remembered, found=found), call_id)
    return MemoryContext(
        messages=[ChatMessage(role=m.role, content=m.content) for m in built.messages],
        memory_tokens=built.memory_tokens,
        budget_tokens=settings.memory_context_tokens,
        returning=remembered.is_returning,
        greeting=await memory.greeting_for(remembered, greetings),
        search=[SearchHit.of(f) for f in built.found],
    )


@router.get(
    f"{CALLER_PATH}/search",
    summary="Search everything the caller said in their calls",
    description="Full-text search of the caller's whole archive with this bot: every archived turn and "
    "call summary, ranked (a word rare in the caller's calls counts for more than a common one), best "
    "first, each with its call's id and date. What the prompt's search finds at each caller turn, "
    "asked directly. Calls still live are not archived yet and not searched.",
    responses={200: example("What matched", examples.SEARCH_RESULTS), **responses(401, 404, 422, 503)},
)
async def search_caller(
    *,
    caller: CallerDep,
    memory: MemoryDep,
    q: Annotated[
        str, Query(min_length=1, max_length=2000, description="What to look for, in the caller's words")
    ],
    limit: Annotated[int, Query(ge=1, le=50, description="At most this many results")] = 10,
) -> SearchResults:
    found = await memory.search(caller.id, q, limit)
    return SearchResults(query=q, results=[SearchHit.of(f) for f in found])


@router.post(
    f"{CALLER_PATH}/live/{{call_id}}/turns",
    summary="Append a turn to a live call",
    description="Records what the caller or your bot said, exactly as webhook turns are recorded. The "
    "first turn starts the call; end it with `.../end`, which archives it (and queues its summary).",
    responses={
        200: example("The turn was recorded", examples.TURN_RECORDED),
        **responses(400, 401, 404, 409, 413, 422, 503),
    },
)
async def append_turn(
    *,
    caller: CallerDep,
    call_id: CallId,
    turn: Annotated[NewTurn, Body(openapi_examples=examples.NEW_TURNS)],
    memory: MemoryDep,
    settings: SettingsDep,
) -> TurnRecorded:
    text = " ".join(turn.text.split())
    if not text or len(text) > settings.max_speech_chars:
        raise InvalidEvent(f"`text` must have 1 to {settings.max_speech_chars} characters", field="text")
    call = CallRef(PLATFORM, call_id)
    await memory.begin_call(call, caller.number, caller.id.bot_number)
    recorded, _ = await memory.record_turn(call, caller.id, Role(turn.role), text)
    return TurnRecorded(call_id=call_id, seq=recorded.seq)


@router.post(
    f"{CALLER_PATH}/live/{{call_id}}/end",
    summary="End a live call: archive it",
    description="Archives the call's turns to Postgres and queues its summary. Idempotent, like a webhook "
    "hangup: a repeat answers `already_archived`, a call never started `unknown_call`, and "
    "`archive_pending` means Postgres is down and the call waits in Redis for the flusher.",
    responses={
        200: example("What happened to the call", examples.CALL_END_RESULT),
        **responses(400, 401, 404, 409, 413, 422, 503),
    },
)
async def end_call(
    *,
    caller: CallerDep,
    call_id: CallId,
    memory: MemoryDep,
    end: Annotated[CallEnd | None, Body(openapi_examples=examples.CALL_ENDS)] = None,
) -> CallEndResult:
    call = CallRef(PLATFORM, call_id)
    try:
        owner = await memory.locate(call, caller.number)
    except (CallNotStarted, CallAlreadyEnded):
        owner = caller.id  # end_call answers these: unknown call, already archived
    if owner != caller.id:  # the same number calling another bot, under the same call id
        raise NotFound(f"no live call {call_id} of this caller")
    outcome: EndOutcome = await memory.end_call(call, caller.number, end.reason if end else None)
    return CallEndResult(status=str(outcome))


@router.post(
    f"{CALLER_PATH}/live/{{call_id}}/verify",
    summary="Verify the caller of a live call",
    description="Your bot checked who is calling (a PIN, a one-time code sent to the number on file): "
    "from now on the call is verified. Under the `verified` disclosure policy its next turn reads the "
    "caller's memory, and its turns, those said before the check included, become the caller's "
    "(docs/caller-trust.md). Works for calls of every platform: name it with `platform` (`api` for "
    "calls recorded through this API, or `seed`, `twilio`, `voipbin` with the platform's call id). "
    "A call already verified answers `already_verified`.",
    responses={
        200: example("The call is verified", examples.CALL_VERIFIED),
        **responses(401, 404, 409, 422, 503),
    },
)
async def verify_call(
    *,
    caller: CallerDep,
    call_id: PlatformCallId,
    memory: MemoryDep,
    platform: Annotated[
        str, Query(min_length=1, max_length=32, description="The platform the call came through")
    ] = PLATFORM,
) -> CallVerified:
    call = CallRef(platform, call_id)
    owner = await memory.locate(call, caller.number)
    if owner != caller.id:  # the same number calling another bot, under the same call id
        raise NotFound(f"no live call {call_id} of this caller")
    return CallVerified(status=str(await memory.verify_call(call, owner)))


@router.get(
    f"{CALLER_PATH}/calls",
    summary="List the caller's calls",
    description="The caller's archived calls, newest first, each with its summary once the summary job has "
    "run. Page with `before` (the `started_at` of the last call of the previous page).",
    responses={200: example("The calls", {"calls": [examples.CALL]}), **responses(401, 404, 422, 503)},
)
async def list_calls(
    *,
    caller: CallerDep,
    records: RecordsDep,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many calls")] = 50,
    before: Annotated[datetime | None, Query(description="Only calls that started before this")] = None,
) -> CallList:
    calls = await records.calls(caller.id, limit=limit, before=before)
    if calls is None:
        raise caller.not_found()
    return CallList(calls=[CallOut.of(c) for c in calls])


@router.get(
    f"{CALLER_PATH}/calls/{{platform}}/{{call_id}}",
    summary="Read a call's transcript",
    description="One archived call of the caller with every turn, in spoken order. `platform` is where "
    "the call came from (`seed`, `voipbin`, `api`), `call_id` the platform's id of it.",
    responses={
        200: example("The call and its turns", {"call": examples.CALL, "turns": examples.TURNS}),
        **responses(401, 404, 422, 503),
    },
)
async def read_transcript(
    *,
    caller: CallerDep,
    platform: Annotated[
        str,
        Path(
            max_length=32,
            description="Where the call came from",
            openapi_examples={"seed": {"value": "seed"}},
        ),
    ],
    call_id: PlatformCallId,
    records: RecordsDep,
) -> Transcript:
    found = await records.transcript(caller.id, platform, call_id)
    if found is None:
        raise NotFound(f"no call {platform}/{call_id} of this caller")
    return Transcript.of(*found)


@router.get(
    f"{CALLER_PATH}/export",
    summary="Export all of the caller's data as JSON",
    description="What the archive holds: the caller's summary, profile and prepared greeting, and "
    "every call with every turn.",
    responses={
        200: example("Everything stored about the caller", examples.EXPORT),
        **responses(401, 404, 422, 503),
    },
)
async def export_caller(caller: CallerDep, records: RecordsDep) -> Export:
    data = await records.export(caller.id)
    if data is None:
        raise caller.not_found()
    return Export.of(caller.id.bot_number, caller.number, data)


@router.delete(
    CALLER_PATH,
    summary="Erase the caller",
    description="Deletes everything of the caller in Postgres and Redis — calls, turns, summaries, "
    "profile, prepared greeting, queued summary jobs, live calls — in one request, and returns a "
    "receipt. A tombstone keeps a queued job, a retried hangup or a late webhook from writing any of it "
    "again. Repeating the request is harmless.",
    responses={200: example("The erasure receipt", examples.RECEIPT), **responses(401, 404, 422, 503)},
)
async def erase_caller(caller: CallerDep, eraser: ErasureDep) -> ErasureReceiptOut:
    return ErasureReceiptOut.of(caller.number, await eraser.erase(caller.id))


@router.get(
    f"{CALLER_PATH}/brief",
    summary="What is remembered of the caller, for a person or an agent to read",
    description="The caller's profile, rolling summary, last topic and recent call summaries, and the "
    "same memory as one bounded text (the memory brief a platform's own AI is given). A caller never "
    "seen, or erased, gets `returning: false` and a brief that says nothing is remembered.",
    responses={
        200: example("What is remembered", examples.BRIEF),
        **responses(401, 404, 422, 503),
    },
)
async def read_brief(
    *,
    caller: CallerDep,
    memory: MemoryDep,
    prompt: PromptDep,
    max_chars: Annotated[int, Query(ge=100, le=20_000, description="Upper bound of `brief`")] = 4000,
) -> MemoryBrief:
    remembered = await memory.memory_for(caller.id)
    return MemoryBrief(
        bot_number=caller.id.bot_number,
        caller_number=caller.number,
        returning=remembered.is_returning,
        call_count=remembered.call_count,
        last_topic=remembered.last_topic,
        profile=dict(remembered.profile),
        summary=remembered.summary,
        recent_calls=[
            EarlierCall(call_id=s.call_id, started_at=s.started_at, summary=s.text)
            for s in reversed(remembered.call_summaries)
        ],
        brief=memory_brief(prompt, remembered, max_chars),
    )
