"""A caller's archived records for integrators: their calls, a transcript, everything, and erasure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callmemory.core.events import CallRef
from callmemory.core.identity import CallerId
from callmemory.db.models import Call, Caller, Erasure, SummaryJob, TurnRow


@dataclass(frozen=True, slots=True)
class CallInfo:
    platform: str
    call_id: str
    started_at: datetime
    ended_at: datetime
    end_reason: str | None
    turn_count: int
    summary: str | None
    caller_verified: bool


@dataclass(frozen=True, slots=True)
class TurnInfo:
    seq: int
    role: str
    text: str
    at: datetime
    fallback: bool


@dataclass(frozen=True, slots=True)
class CallerInfo:
    first_seen_at: datetime
    last_seen_at: datetime
    call_count: int
    last_topic: str | None
    summary: str | None
    profile: dict[str, Any]
    next_greeting: str | None


@dataclass(frozen=True, slots=True)
class CallerExport:
    caller: CallerInfo
    calls: list[tuple[CallInfo, list[TurnInfo]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ErasedRows:
    """What an erasure removed from Postgres."""

    caller: bool
    calls: int
    turns: int
    call_summaries: int
    caller_summary: bool
    profile: bool
    prepared_greeting: bool
    summary_jobs: int


def _call_info(call: Call) -> CallInfo:
    return CallInfo(
        platform=call.platform,
        call_id=call.external_id,
        started_at=call.started_at,
        ended_at=call.ended_at,
        end_reason=call.end_reason,
        turn_count=call.turn_count,
        summary=call.summary,
        caller_verified=call.caller_verified,
    )


def _turn_info(turn: TurnRow) -> TurnInfo:
    return TurnInfo(seq=turn.seq, role=turn.role, text=turn.text, at=turn.spoken_at, fallback=turn.fallback)


def _is(caller: CallerId) -> Any:
    return (Caller.bot_number == caller.bot_number) & (Caller.caller_hash == caller.caller_hash)


@dataclass(frozen=True, slots=True)
class ArchiveTotals:
    callers: int
    calls: int
    turns: int


class CallerRecords:
    """Postgres reads and erasure of one caller's data. Each method is one transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def callers(self, bot_number: str | None = None) -> list[tuple[CallerId, str | None]]:
        """Every archived caller (of one bot, or of all), first seen first, with their number when kept."""
        query = select(Caller.bot_number, Caller.caller_hash, Caller.caller_number).order_by(Caller.id)
        if bot_number is not None:
            query = query.where(Caller.bot_number == bot_number)
        async with self._sessions() as session:
            rows = await session.execute(query)
            return [(CallerId(bot, caller_hash), number) for bot, caller_hash, number in rows]

    async def totals(self, bot_number: str | None = None) -> ArchiveTotals:
        """How many callers, calls and turns the archive holds (of one bot, or of all)."""
        callers = select(func.count()).select_from(Caller)
        calls = select(func.count()).select_from(Call).join(Caller, Caller.id == Call.caller_id)
        turns = (
            select(func.count())
            .select_from(TurnRow)
            .join(Call, Call.id == TurnRow.call_id)
            .join(Caller, Caller.id == Call.caller_id)
        )
        if bot_number is not None:
            callers, calls, turns = (
                q.where(Caller.bot_number == bot_number) for q in (callers, calls, turns)
            )
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(callers.scalar_subquery(), calls.scalar_subquery(), turns.scalar_subquery())
                )
            ).one()
            return ArchiveTotals(callers=row[0], calls=row[1], turns=row[2])

    async def calls(
        self, caller: CallerId, *, limit: int, before: datetime | None = None
    ) -> list[CallInfo] | None:
        """The caller's calls, newest first; None when the caller is unknown."""
        async with self._sessions() as session:
            caller_id = (await session.execute(select(Caller.id).where(_is(caller)))).scalar_one_or_none()
            if caller_id is None:
                return None
            query = select(Call).where(Call.caller_id == caller_id)
            if before is not None:
                query = query.where(Call.started_at < before)
            rows = (await session.execute(query.order_by(Call.started_at.desc()).limit(limit))).scalars()
            return [_call_info(c) for c in rows]

    async def transcript(
        self, caller: CallerId, platform: str, call_id: str
    ) -> tuple[CallInfo, list[TurnInfo]] | None:
        """One of the caller's calls with all its turns; None when it is not theirs (or does not exist)."""
        async with self._sessions() as session:
            call = (
                await session.execute(
                    select(Call)
                    .join(Caller, Caller.id == Call.caller_id)
                    .where(_is(caller), Call.platform == platform, Call.external_id == call_id)
                )
            ).scalar_one_or_none()
            if call is None:
                return None
            turns = (
                await session.execute(select(TurnRow).where(TurnRow.call_id == call.id).order_by(TurnRow.seq))
            ).scalars()
            return _call_info(call), [_turn_info(t) for t in turns]

    async def export(self, caller: CallerId) -> CallerExport | None:
        """Everything the archive holds about the caller; None when the caller is unknown."""
        async with self._sessions() as session:
            row = (await session.execute(select(Caller).where(_is(caller)))).scalar_one_or_none()
            if row is None:
                return None
            calls = list(
                (
                    await session.execute(
                        select(Call).where(Call.caller_id == row.id).order_by(Call.started_at)
                    )
                ).scalars()
            )
            turns: dict[int, list[TurnInfo]] = {c.id: [] for c in calls}
            for turn in (
                await session.execute(
                    select(TurnRow)
                    .join(Call, Call.id == TurnRow.call_id)
                    .where(Call.caller_id == row.id)
                    .order_by(TurnRow.call_id, TurnRow.seq)
                )
            ).scalars():
                turns[turn.call_id].append(_turn_info(turn))
            return CallerExport(
                caller=CallerInfo(
                    first_seen_at=row.first_seen_at,
                    last_seen_at=row.last_seen_at,
                    call_count=row.call_count,
                    last_topic=row.last_topic,
                    summary=row.summary,
                    profile=dict(row.profile),
                    next_greeting=row.next_greeting,
                ),
                calls=[(_call_info(c), turns[c.id]) for c in calls],
            )

    async def erase(self, caller: CallerId, erased_at: datetime) -> tuple[ErasedRows, tuple[CallRef, ...]]:
        """Delete the caller with all their calls, turns, summaries and jobs, and leave a tombstone so
        that nothing from before `erased_at` is archived again (a late hangup, a pending retry).

        Also returns the deleted calls' platform ids, whose ended-call markers in Redis name the caller.
        """
        async with self._sessions.begin() as session:
            row = (
                await session.execute(select(Caller).where(_is(caller)).with_for_update())
            ).scalar_one_or_none()
            counts = (0, 0, 0, 0)
            refs: tuple[CallRef, ...] = ()
            if row is not None:
                found = await session.execute(
                    select(Call.platform, Call.external_id).where(Call.caller_id == row.id)
                )
                refs = tuple(CallRef(platform, external_id) for platform, external_id in found)
                counts = (
                    await session.execute(
                        select(
                            func.count(Call.id.distinct()),
                            func.count(TurnRow.seq),
                            func.count(Call.id.distinct()).filter(Call.summary.is_not(None)),
                            select(func.count())
                            .select_from(SummaryJob)
                            .join(Call, Call.id == SummaryJob.call_id)
                            .where(Call.caller_id == row.id)
                            .scalar_subquery(),
                        )
                        .select_from(Call)
                        .outerjoin(TurnRow, TurnRow.call_id == Call.id)
                        .where(Call.caller_id == row.id)
                    )
                ).one()
                counts = (counts[0], counts[1], counts[2], counts[3])
                await session.execute(delete(Caller).where(Caller.id == row.id))  # cascades to the rest
            tombstone = insert(Erasure).values(
                bot_number=caller.bot_number, caller_hash=caller.caller_hash, erased_at=erased_at
            )
            await session.execute(
                tombstone.on_conflict_do_update(
                    index_elements=[Erasure.bot_number, Erasure.caller_hash],
                    set_={"erased_at": func.greatest(Erasure.erased_at, tombstone.excluded.erased_at)},
                )
            )
        return ErasedRows(
            caller=row is not None,
            calls=counts[0],
            turns=counts[1],
            call_summaries=counts[2],
            caller_summary=row is not None and row.summary is not None,
            profile=row is not None and bool(row.profile),
            prepared_greeting=row is not None and row.next_greeting is not None,
            summary_jobs=counts[3],
        ), refs
