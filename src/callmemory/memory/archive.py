"""The Postgres archive: every finished call with all its turns, and each caller's lasting summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, case, func, literal, select, text, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callmemory.db.models import Call, Caller, TurnRow
from callmemory.events import CallRef, Role
from callmemory.memory.keys import CallerId
from callmemory.memory.types import CallerMemory, CallRecord, Turn

_RENUMBER_NEGATED = text(
    "UPDATE turns SET seq = -o.n FROM (SELECT seq, row_number() OVER (ORDER BY spoken_at, seq) AS n "
    "FROM turns WHERE call_id = :c) AS o WHERE turns.call_id = :c AND turns.seq = o.seq"
)


_TURN_COLUMNS = (TurnRow.seq, TurnRow.role, TurnRow.text, TurnRow.spoken_at, TurnRow.fallback)


def _turn(row: Row[*tuple[Any, ...]]) -> Turn:
    """A turn from a row of _TURN_COLUMNS plus the call's `external_id`."""
    return Turn(
        seq=row.seq,
        role=Role(row.role),
        text=row.text,
        at=row.spoken_at,
        call_id=row.external_id,
        fallback=row.fallback,
    )


class Archive:
    """Postgres operations. Each public method is one transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def load_caller(self, caller: CallerId, recent_turns: int) -> CallerMemory | None:
        """The caller's lasting memory and most recent turns, in one indexed query; None if unknown."""
        recent = (
            select(*_TURN_COLUMNS, Call.external_id)
            .join(Call, Call.id == TurnRow.call_id)
            .where(Call.caller_id == Caller.id)
            .order_by(Call.started_at.desc(), TurnRow.seq.desc())
            .limit(recent_turns)
            .lateral("recent")
        )
        stmt = (
            select(Caller.call_count, Caller.last_topic, recent)
            .select_from(Caller)
            .outerjoin(recent, true())
            .where(Caller.bot_number == caller.bot_number, Caller.caller_hash == caller.caller_hash)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        if not rows:
            return None
        turns = [_turn(r) for r in rows if r.seq is not None]
        turns.reverse()  # the query reads newest first; memory is kept oldest first
        return CallerMemory(
            caller=caller, call_count=rows[0].call_count, last_topic=rows[0].last_topic, recent=tuple(turns)
        )

    async def archive_call(self, record: CallRecord) -> bool:
        """Store a finished call with all its turns. True if stored now, False if it already was.

        Safe to repeat and to race: the unique (platform, external id) of a call and (call, seq) of a
        turn make every insert happen at most once, and the caller's counters move only with the
        insert of the call itself.
        """
        async with self._sessions.begin() as session:
            upsert = insert(Caller).values(
                bot_number=record.caller.bot_number,
                caller_hash=record.caller.caller_hash,
                caller_number=record.caller_number,
                first_seen_at=record.started_at,
                last_seen_at=record.ended_at,
            )
            caller_id = (
                await session.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[Caller.bot_number, Caller.caller_hash],
                        set_={
                            "last_seen_at": func.greatest(Caller.last_seen_at, upsert.excluded.last_seen_at),
                            "caller_number": func.coalesce(
                                upsert.excluded.caller_number, Caller.caller_number
                            ),
                        },
                    ).returning(Caller.id)
                )
            ).scalar_one()

            call_id = (
                await session.execute(
                    insert(Call)
                    .values(
                        platform=record.call.platform,
                        external_id=record.call.call_id,
                        caller_id=caller_id,
                        started_at=record.started_at,
                        ended_at=record.ended_at,
                        end_reason=record.end_reason,
                        turn_count=len(record.turns),
                        summary=record.summary,
                    )
                    .on_conflict_do_nothing(index_elements=[Call.platform, Call.external_id])
                    .returning(Call.id)
                )
            ).scalar_one_or_none()
            if call_id is None:
                return False

            if record.turns:
                await session.execute(
                    insert(TurnRow)
                    .values(
                        [
                            {
                                "call_id": call_id,
                                "seq": t.seq,
                                "role": str(t.role),
                                "text": t.text,
                                "spoken_at": t.at,
                                "fallback": t.fallback,
                            }
                            for t in record.turns
                        ]
                    )
                    .on_conflict_do_nothing(index_elements=[TurnRow.call_id, TurnRow.seq])
                )

            # Calls can be archived out of order; only the newest call may set the topic.
            newer_call_exists = (
                select(Call.id)
                .where(Call.caller_id == caller_id, Call.started_at > record.started_at)
                .exists()
            )
            await session.execute(
                update(Caller)
                .where(Caller.id == caller_id)
                .values(
                    call_count=Caller.call_count + 1,
                    last_topic=case(
                        (newer_call_exists, Caller.last_topic),
                        else_=func.coalesce(record.topic, Caller.last_topic),
                    ),
                )
            )
            return True

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

    async def add_late_turn(
        self, call: CallRef, role: Role, said: str, at: datetime
    ) -> tuple[CallerId, tuple[Turn, ...]] | None:
        """Add a turn that arrived after its call was archived; None if the call is not archived.

        The call's turns are renumbered by when they were spoken, so the late one lands where it was
        said. Returns the caller and the call's turns as they now stand.
        """
        async with self._sessions.begin() as session:
            found = (
                await session.execute(
                    select(Call.id, Caller.bot_number, Caller.caller_hash)
                    .join(Caller, Caller.id == Call.caller_id)
                    .where(Call.platform == call.platform, Call.external_id == call.call_id)
                    .with_for_update(of=Call)
                )
            ).first()
            if found is None:
                return None
            last = (
                await session.execute(
                    select(func.coalesce(func.max(TurnRow.seq), 0)).where(TurnRow.call_id == found.id)
                )
            ).scalar_one()
            row = {"call_id": found.id, "seq": last + 1, "role": str(role), "text": said, "spoken_at": at}
            await session.execute(insert(TurnRow).values(row))
            # Two passes through negative numbers, so no two rows ever hold the same (call, seq).
            await session.execute(_RENUMBER_NEGATED, {"c": found.id})
            await session.execute(text("UPDATE turns SET seq = -seq WHERE call_id = :c"), {"c": found.id})
            await session.execute(
                update(Call).where(Call.id == found.id).values(turn_count=Call.turn_count + 1)
            )
            rows = await session.execute(
                select(*_TURN_COLUMNS, literal(call.call_id).label("external_id"))
                .where(TurnRow.call_id == found.id)
                .order_by(TurnRow.seq)
            )
            turns = tuple(_turn(r) for r in rows)
            return CallerId(bot_number=found.bot_number, caller_hash=found.caller_hash), turns

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

    async def ping(self) -> bool:
        async with self._sessions() as session:
            return bool((await session.execute(text("SELECT 1"))).scalar_one() == 1)
