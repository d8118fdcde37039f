"""The Postgres archive: every finished call with all its turns, and each caller's lasting summary."""

from __future__ import annotations

from sqlalchemy import case, func, select, text, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callmemory.db.models import Call, Caller, TurnRow
from callmemory.events import Role
from callmemory.memory.keys import CallerId
from callmemory.memory.types import CallerMemory, CallRecord, Turn


class Archive:
    """Postgres operations. Each public method is one transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def load_caller(self, caller: CallerId, recent_turns: int) -> CallerMemory | None:
        """The caller's lasting memory and most recent turns, in one indexed query; None if unknown."""
        recent = (
            select(
                TurnRow.seq,
                TurnRow.role,
                TurnRow.text,
                TurnRow.spoken_at,
                TurnRow.fallback,
                Call.external_id,
            )
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
        turns = [
            Turn(
                seq=r.seq,
                role=Role(r.role),
                text=r.text,
                at=r.spoken_at,
                call_id=r.external_id,
                fallback=r.fallback,
            )
            for r in rows
            if r.seq is not None
        ]
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
                    )
                    .on_conflict_do_nothing(index_elements=[Call.platform, Call.external_id])
                    .returning(Call.id)
                )
            ).scalar_one_or_none()
            if call_id is None:
                return False

            if record.turns:
                # The table, not the mapped class, and the rows as parameters of one statement: the
                # ORM's bulk path and a statement compiled for every transcript length cost more CPU
                # than the rest of archiving together.
                turns = TurnRow.metadata.tables[TurnRow.__tablename__]
                await session.execute(
                    insert(turns).on_conflict_do_nothing(index_elements=[TurnRow.call_id, TurnRow.seq]),
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
                    ],
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

    async def ping(self) -> bool:
        async with self._sessions() as session:
            return bool((await session.execute(text("SELECT 1"))).scalar_one() == 1)
