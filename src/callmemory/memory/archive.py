"""The Postgres archive: every finished call with all its turns, and each caller's lasting summary."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Integer, Row, Select, bindparam, func, literal_column, select, text, true, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from callmemory.core.events import CallRef, Role
from callmemory.core.identity import CallerId
from callmemory.core.trust import Trust
from callmemory.db.deadline import within
from callmemory.db.models import Call, Caller, TurnRow
from callmemory.db.session import create_sessionmaker
from callmemory.memory.profile import clean_profile
from callmemory.memory.types import CallerMemory, CallRecord, CallSummary, Turn

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

# Migration 0007's function (0004's, with the call's trust); asyncpg's own placeholders, as
# exec_driver_sql hands the text to it as is.
_ARCHIVE_CALL = (
    "SELECT callmemory_archive_call("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
)


async def _retried_once_if_disconnected(attempt: Callable[[], Awaitable[T]]) -> T:
    """`attempt()`, run a second time if it failed on a connection that had been lost.

    The engine does not ping connections on checkout (three round trips each time): a connection that
    died in the pool, e.g. across a Postgres restart, fails on first use instead. SQLAlchemy then
    invalidates the whole pool, so the second attempt runs on a fresh connection. Only for operations
    that are safe to repeat.
    """
    try:
        return await attempt()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("a pooled Postgres connection was lost; retrying on a fresh one")
    return await attempt()


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def turn_of(row: Any, call_id: str) -> Turn:
    """A turn from a `turns` row (or any row with its columns)."""
    return Turn(
        seq=row.seq,
        role=Role(row.role),
        text=row.text,
        at=row.spoken_at,
        call_id=call_id,
        fallback=row.fallback,
    )


# Where a late turn goes: right after the last turn said no later than it, and in any case before the
# first turn of its own speaker said after it (one speaker's times come from one clock; the other's may
# be ours). Only the late turn is placed by time: the order the call was recorded in stays as it is.
_LATE_TURN_PLACE = text(
    "SELECT least("
    "(SELECT min(seq) FROM turns WHERE call_id = :c AND role = :r AND spoken_at > :at), "
    "coalesce((SELECT max(seq) FROM turns WHERE call_id = :c AND spoken_at <= :at), 0) + 1)"
)
# Makes room at :p; through negative numbers, so no two rows ever hold the same (call, seq).
_SHIFT_NEGATED = text("UPDATE turns SET seq = -(seq + 1) WHERE call_id = :c AND seq >= :p")
_UNNEGATE = text("UPDATE turns SET seq = -seq WHERE call_id = :c AND seq < 0")


_TURN_COLUMNS = (TurnRow.seq, TurnRow.role, TurnRow.text, TurnRow.spoken_at, TurnRow.fallback)


# Under a bot's `verified` disclosure (core/trust.py) only verified calls are read.
_DISCLOSED = Call.caller_verified | ~bindparam("verified_only")


def _load_caller_statement() -> Select[Any]:
    """The caller's lasting memory, call summaries and most recent turns: one indexed query."""
    recent = (
        select(*_TURN_COLUMNS, Call.external_id)
        .join(Call, Call.id == TurnRow.call_id)
        .where(Call.caller_id == Caller.id, _DISCLOSED)
        .order_by(Call.started_at.desc(), TurnRow.seq.desc())
        .limit(bindparam("recent_turns", type_=Integer))
        .lateral("recent")
    )
    latest_calls = (
        select(Call.external_id, Call.started_at, Call.summary)
        .where(Call.caller_id == Caller.id, Call.summary.is_not(None), _DISCLOSED)
        .order_by(Call.started_at.desc())
        .limit(bindparam("call_summaries", type_=Integer))
        .correlate(Caller)
        .subquery("latest_calls")
    )
    summaries = (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_array(
                            latest_calls.c.external_id, latest_calls.c.started_at, latest_calls.c.summary
                        ),
                        latest_calls.c.started_at.desc(),
                    )
                ),
                literal_column("'[]'::json"),
            )
        )
        .select_from(latest_calls)
        .scalar_subquery()
    )
    return (
        select(
            Caller.call_count,
            Caller.last_topic,
            Caller.summary,
            Caller.profile,
            Caller.next_greeting,
            summaries.label("call_summaries"),
            recent,
        )
        .select_from(Caller)
        .outerjoin(recent, true())
        .where(Caller.bot_number == bindparam("bot_number"), Caller.caller_hash == bindparam("caller_hash"))
    )


# Built once: SQLAlchemy then finds its compiled form by the statement itself, not by rebuilding it.
_LOAD_CALLER = _load_caller_statement()


def _deadlined(
    method: Callable[Concatenate[Archive, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Archive, P], Coroutine[Any, Any, T]]:
    """The method, bounded by the archive's deadline: the wait for a pool connection, connecting and a
    retry included. Past it the method raises TimeoutError (an OSError, as a refused connection is),
    and the caller goes on from Redis."""

    async def bounded(archive: Archive, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await within(archive._timeout_s, method(archive, *args, **kwargs))

    bounded.__doc__ = method.__doc__
    return bounded


class Archive:
    """Postgres operations. Each public method is one transaction, with a deadline."""

    def __init__(self, engine: AsyncEngine, *, timeout_s: float = 5.0) -> None:
        self._sessions = create_sessionmaker(engine)
        # Shares the engine's pool; its connections run each statement in a transaction of its own.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._timeout_s = timeout_s

    @_deadlined
    async def load_caller(
        self, caller: CallerId, recent_turns: int, call_summaries: int = 10, *, verified_only: bool = False
    ) -> CallerMemory | None:
        """The caller's lasting memory, summaries and most recent turns, in one indexed query; None if
        unknown. The call summaries come as one JSON column, so they do not multiply the turn rows.
        With `verified_only`, the turns and summaries of unverified calls are left out."""
        params = {
            "verified_only": verified_only,
            "bot_number": caller.bot_number,
            "caller_hash": caller.caller_hash,
            "recent_turns": recent_turns,
            "call_summaries": call_summaries,
        }

        async def attempt() -> list[Row[Any]]:
            # A read of one statement: on an autocommit connection, without BEGIN and ROLLBACK.
            async with self._autocommit.connect() as conn:
                return list((await conn.execute(_LOAD_CALLER, params)).all())

        rows = await _retried_once_if_disconnected(attempt)
        if not rows:
            return None
        turns = [turn_of(r, r.external_id) for r in rows if r.seq is not None]
        turns.reverse()  # the query reads newest first; memory is kept oldest first
        first = rows[0]
        return CallerMemory(
            caller=caller,
            call_count=first.call_count,
            last_topic=first.last_topic,
            recent=tuple(turns),
            summary=first.summary,
            profile=clean_profile(first.profile),
            greeting=first.next_greeting,
            call_summaries=tuple(
                CallSummary(call_id=c, started_at=_parse_time(at), text=t)
                for c, at, t in reversed(first.call_summaries)
            ),
        )

    @_deadlined
    async def archive_call(self, record: CallRecord) -> bool:
        """Store a finished call with all its turns. True if stored now, False if it already was.

        Safe to repeat and to race: the unique (platform, external id) of a call and (call, seq) of a
        turn make every insert happen at most once, and the caller's counters move only with the
        insert of the call itself. The call's summary job is queued in the same transaction, so it is
        exactly as durable as the call. A call that began before the caller was erased is not stored.
        """
        # All of it is one statement (migration 0004's function), atomic by itself: no BEGIN/COMMIT
        # round trips, and none of SQLAlchemy's statement building on the hangup's path.
        turns = record.turns
        params = (
            record.caller.bot_number,
            record.caller.caller_hash,
            record.caller_number,
            record.call.platform,
            record.call.call_id,
            record.started_at,
            record.ended_at,
            record.end_reason,
            record.summary,
            record.topic,
            [t.seq for t in turns],
            [str(t.role) for t in turns],
            [t.text for t in turns],
            [t.at for t in turns],
            [t.fallback for t in turns],
            record.trust is Trust.VERIFIED,
            record.apart,
        )

        async def attempt() -> bool:
            async with self._autocommit.connect() as conn:
                outcome = (await conn.exec_driver_sql(_ARCHIVE_CALL, params)).scalar_one()
            return bool(outcome == "stored")

        return await _retried_once_if_disconnected(attempt)

    @_deadlined
    async def set_summary(self, call: CallRef, summary: str) -> bool:
        """Set an archived call's summary; False when the call is not archived."""
        async with self._sessions.begin() as session:
            updated = await session.execute(
                update(Call)
                .where(Call.platform == call.platform, Call.external_id == call.call_id)
                .values(summary=summary)
                .returning(Call.id)
            )
            return updated.first() is not None

    @_deadlined
    async def add_late_turn(
        self, call: CallRef, role: Role, said: str, at: datetime
    ) -> tuple[CallerId, tuple[Turn, ...], bool] | None:
        """Add a turn that arrived after its call was archived; None if the call is not archived.

        It lands where it was said (see _LATE_TURN_PLACE); the turns after it move up by one.
        Returns the caller, the call's turns as they now stand, and whether its caller was verified.
        """
        async with self._sessions.begin() as session:
            found = (
                await session.execute(
                    select(Call.id, Call.caller_verified, Caller.bot_number, Caller.caller_hash)
                    .join(Caller, Caller.id == Call.caller_id)
                    .where(Call.platform == call.platform, Call.external_id == call.call_id)
                    .with_for_update(of=Call)
                )
            ).first()
            if found is None:
                return None
            place = {"c": found.id, "r": str(role), "at": at}
            seq = (await session.execute(_LATE_TURN_PLACE, place)).scalar_one()
            await session.execute(_SHIFT_NEGATED, {"c": found.id, "p": seq})
            await session.execute(_UNNEGATE, {"c": found.id})
            row = {"call_id": found.id, "seq": seq, "role": str(role), "text": said, "spoken_at": at}
            await session.execute(insert(TurnRow).values(row))
            await session.execute(
                update(Call).where(Call.id == found.id).values(turn_count=Call.turn_count + 1)
            )
            rows = await session.execute(
                select(*_TURN_COLUMNS).where(TurnRow.call_id == found.id).order_by(TurnRow.seq)
            )
            turns = tuple(turn_of(r, call.call_id) for r in rows)
            caller = CallerId(bot_number=found.bot_number, caller_hash=found.caller_hash)
            return caller, turns, found.caller_verified

    @_deadlined
    async def set_topic(self, call: CallRef, topic: str) -> None:
        """The caller's topic, as learnt from this archived call, unless a newer call has set one."""
        this = (
            select(Call.caller_id, Call.started_at)
            .where(Call.platform == call.platform, Call.external_id == call.call_id)
            .cte("this")
        )
        newer = (
            select(Call.id)
            .where(Call.caller_id == this.c.caller_id, Call.started_at > this.c.started_at)
            .exists()
        )
        async with self._sessions.begin() as session:
            await session.execute(
                update(Caller)
                .where(Caller.id == select(this.c.caller_id).scalar_subquery(), ~newer)
                .values(last_topic=topic)
            )

    async def ping(self, timeout_s: float) -> bool:
        return await within(timeout_s, self._ping())

    async def _ping(self) -> bool:
        async with self._sessions() as session:
            return bool((await session.execute(text("SELECT 1"))).scalar_one() == 1)
