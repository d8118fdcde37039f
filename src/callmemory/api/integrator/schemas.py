"""What the integrator API takes and answers. The admin CLI and the MCP server answer with these too,
so that a caller's export or erasure receipt reads the same whichever way it was asked for."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from callmemory.api.integrator import examples
from callmemory.core.events import Role
from callmemory.core.storable import SPOKEN_PATTERN
from callmemory.memory.erasure import ErasureReceipt
from callmemory.memory.profile import profile_keys
from callmemory.memory.records import CallerExport, CallInfo, TurnInfo
from callmemory.memory.types import Found

Profile = Annotated[dict[str, Any], Field(description=profile_keys())]


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class SearchHit(BaseModel):
    call_id: str = Field(description="The id of the call it was said in (the platform's, or yours).")
    started_at: datetime = Field(description="When that call began.")
    kind: Literal["turn", "summary"] = Field(description="A turn of the call, or the call's summary.")
    role: Literal["caller", "bot"] | None = Field(
        default=None, description="Who said it; null for a summary."
    )
    seq: int | None = Field(
        default=None, description="The turn's place in its call (from 1); null for a summary."
    )
    text: str
    rank: float = Field(description="How well it matches; higher is better, comparable within one answer.")

    @classmethod
    def of(cls, found: Found) -> SearchHit:
        return cls(
            call_id=found.call_id,
            started_at=found.call_started_at,
            kind="summary" if found.is_summary else "turn",
            role=None if found.role is None else ("caller" if found.role is Role.CALLER else "bot"),
            seq=found.seq,
            text=found.text,
            rank=round(found.rank, 4),
        )


class SearchResults(BaseModel):
    query: str
    results: list[SearchHit] = Field(description="Best match first; repeats within a call left out.")

    model_config = {"json_schema_extra": {"examples": [examples.SEARCH_RESULTS]}}


class MemoryContext(BaseModel):
    messages: list[ChatMessage] = Field(
        description="Ready for a chat completions request: the system prompt with the caller's memory, "
        "then the live call's turns (when `call_id` is given). Append the caller's new words and send."
    )
    memory_tokens: int = Field(description="Size of the memory in these messages (cl100k_base tokens).")
    budget_tokens: int = Field(description="The hard limit the memory is kept under.")
    returning: bool = Field(description="Whether the caller has called this bot before.")
    greeting: str = Field(description="What to greet the caller with: prepared after their last call.")
    search: list[SearchHit] = Field(
        default=[],
        description="What the search of the caller's archive contributed to the system prompt (for `q`, "
        "else the live call's last caller turn), best first; empty when nothing matched or was asked.",
    )

    model_config = {"json_schema_extra": {"examples": [examples.CONTEXT]}}


class NewTurn(BaseModel):
    role: Literal["caller", "bot"] = Field(description="Who spoke: the caller or your bot.")
    text: str = Field(
        min_length=1,
        description="What was said (1 to CALLMEMORY_MAX_SPEECH_CHARS characters once runs of whitespace "
        "are one space).",
        json_schema_extra={"pattern": SPOKEN_PATTERN},  # checked with its length, into a 422 naming `text`
    )

    model_config = {"json_schema_extra": {"examples": [examples.NEW_TURN]}}


class TurnRecorded(BaseModel):
    call_id: str
    seq: int = Field(description="The turn's position in the call, from 1.")


class CallEnd(BaseModel):
    reason: str | None = Field(default=None, max_length=64, description="Why the call ended, if known.")


class CallEndResult(BaseModel):
    status: str = Field(description="archived, already_archived or unknown_call")


class CallVerified(BaseModel):
    status: str = Field(description="verified, or already_verified")


class CallOut(BaseModel):
    platform: str = Field(description="Where the call came from: seed, voipbin, api, ...")
    call_id: str
    started_at: datetime
    ended_at: datetime
    end_reason: str | None
    turn_count: int
    summary: str | None = Field(description="What the call was about (written shortly after it ended).")
    caller_verified: bool = Field(
        description="Whether the caller was verified (docs/caller-trust.md). Under the `verified` "
        "disclosure policy what an unverified call said is kept here and in exports, and nowhere else."
    )

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

    @classmethod
    def of(cls, call: CallInfo, turns: list[TurnInfo]) -> Transcript:
        return cls(call=CallOut.of(call), turns=[TurnOut.of(t) for t in turns])


class CallerOut(BaseModel):
    bot_number: str
    caller_number: str
    first_seen_at: datetime
    last_seen_at: datetime
    call_count: int
    last_topic: str | None
    summary: str | None = Field(description="The rolling summary of all their calls.")
    profile: Profile
    next_greeting: str | None


class Export(BaseModel):
    caller: CallerOut
    calls: list[Transcript] = Field(description="Oldest first, each with every turn.")

    @classmethod
    def of(cls, bot_number: str, caller_number: str, data: CallerExport) -> Export:
        return cls(
            caller=CallerOut(bot_number=bot_number, caller_number=caller_number, **asdict(data.caller)),
            calls=[Transcript.of(c, turns) for c, turns in data.calls],
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

    model_config = {"json_schema_extra": {"examples": [examples.RECEIPT]}}


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
    profile: Profile
    summary: str | None = Field(description="The rolling summary of all their calls.")
    recent_calls: list[EarlierCall] = Field(description="Summaries of their latest calls, newest first.")
    brief: str = Field(
        description="All of it as one text, at most `max_chars` long: the memory context the bot's own LLM "
        "is given (profile, summaries, the end of earlier conversations), oldest material dropped first."
    )

    model_config = {"json_schema_extra": {"examples": [examples.BRIEF]}}
