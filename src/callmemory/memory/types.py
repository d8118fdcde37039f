"""The memory a caller has, as both stores and the core see it (no driver types here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from callmemory.core.events import CallRef, Role
from callmemory.core.identity import CallerId
from callmemory.core.trust import Trust


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Turn:
    seq: int  # 1-based position within its call; (call, seq) is unique, which makes archiving idempotent
    role: Role
    text: str
    at: datetime
    call_id: str
    fallback: bool = False  # the bot said the fallback line because the LLM failed


@dataclass(frozen=True, slots=True)
class CallSummary:
    """What one earlier call was about, written by the summary job."""

    call_id: str
    started_at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class Found:
    """A piece of the caller's archive that matches what they just said (see memory/search)."""

    call_id: str
    call_started_at: datetime  # the date the prompt shows
    text: str
    rank: float  # higher is better; comparable only within one search
    seq: int | None = None  # the turn's place in its call; None: the call's summary
    role: Role | None = None  # the turn's speaker; None: the call's summary

    @property
    def is_summary(self) -> bool:
        return self.seq is None


@dataclass(frozen=True, slots=True)
class CallerMemory:
    caller: CallerId
    call_count: int = 0  # archived calls before now
    last_topic: str | None = None
    recent: tuple[Turn, ...] = ()  # oldest first, across calls, capped
    # Long-term memory, present once a call of this caller has been summarised:
    summary: str | None = None  # rolling summary of all their calls
    profile: Mapping[str, Any] = field(default_factory=dict)  # see memory/profile.py
    greeting: str | None = None  # prepared for their next call
    call_summaries: tuple[CallSummary, ...] = ()  # oldest first, capped
    # What a search of their whole archive found for the turn being answered, best first (never
    # stored: read alongside the hot memory at each caller turn).
    found: tuple[Found, ...] = ()
    # The memory of a call kept apart from the caller's (core/trust.py): `recent` holds this call's own
    # latest turns and nothing else is read, whatever the caller's memory holds.
    apart: bool = False

    @property
    def is_returning(self) -> bool:
        return self.call_count > 0 or bool(self.recent)


@dataclass(frozen=True, slots=True)
class LiveCall:
    call: CallRef
    caller: CallerId
    started_at: datetime
    transcript: tuple[Turn, ...] = field(default=())
    summary: str | None = None  # set by the platform (e.g. its AI's summary) while the call was live
    ended_at: datetime | None = None  # when the call was first ended (hangup or sweep), if it was
    end_reason: str | None = None
    trust: Trust = Trust.UNVERIFIED
    apart: bool = False  # kept apart from the caller's memory (core/trust.py)


@dataclass(frozen=True, slots=True)
class EventAnswer:
    """What the bot answered to one platform event, kept so that a redelivery gets the same answer."""

    text: str
    fallback: bool = False


class DuplicateEvent(Exception):
    """The platform delivered an event already seen; `answer` is None while the first is still pending."""

    def __init__(self, answer: EventAnswer | None) -> None:
        super().__init__("event already seen")
        self.answer = answer


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A finished call, ready for the archive."""

    call: CallRef
    caller: CallerId
    started_at: datetime
    ended_at: datetime
    end_reason: str | None
    turns: tuple[Turn, ...]
    topic: str | None
    caller_number: str | None = None  # only when raw numbers are kept (a setting, off by default)
    summary: str | None = None
    trust: Trust = Trust.UNVERIFIED
    # Kept apart from the caller's memory: archived, marked, but no counter, topic or summary job.
    apart: bool = False
