"""The archive's tables. The schema itself is created only by Alembic migrations, never create_all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REGCONFIG, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so migrations can refer to (and drop) them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A search key's index is read at every caller turn while turns keep arriving: no pending list, which
# every search would have to scan whole (see migration 0006).
SEARCH_KEYS_INDEX = {"fastupdate": "off"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Caller(Base):
    __tablename__ = "callers"
    __table_args__ = (UniqueConstraint("bot_number", "caller_hash"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    bot_number: Mapped[str] = mapped_column(String(32))
    caller_hash: Mapped[str] = mapped_column(String(64))
    caller_number: Mapped[str | None] = mapped_column(String(32))  # kept only if the setting allows
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    call_count: Mapped[int] = mapped_column(Integer, server_default="0")
    last_topic: Mapped[str | None] = mapped_column(Text)
    # Long-term memory, written by the summary job after each call.
    summary: Mapped[str | None] = mapped_column(Text)  # rolling summary of all the caller's calls
    profile: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    next_greeting: Mapped[str | None] = mapped_column(Text)  # prepared, so ringing needs no LLM call


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        Index("ix_calls_caller_id_started_at", "caller_id", "started_at"),
        Index(
            "ix_calls_search_keys", "search_keys", postgresql_using="gin", postgresql_with=SEARCH_KEYS_INDEX
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(200))
    caller_id: Mapped[int] = mapped_column(ForeignKey("callers.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(64))
    turn_count: Mapped[int] = mapped_column(Integer, server_default="0")
    summary: Mapped[str | None] = mapped_column(Text)  # the platform's or our own summary of the call
    # Whether the caller was verified (core/trust.py); calls archived before trust was recorded were
    # not, as far as anyone can tell.
    caller_verified: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The summary's words and their keys, kept by a trigger (migrations 0005, 0006) for memory/search.
    search: Mapped[str | None] = mapped_column(TSVECTOR, deferred=True)
    search_keys: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger), deferred=True)


class TurnRow(Base):
    __tablename__ = "turns"
    __table_args__ = (
        CheckConstraint("role IN ('caller', 'bot')", name="role"),
        Index(
            "ix_turns_search_keys", "search_keys", postgresql_using="gin", postgresql_with=SEARCH_KEYS_INDEX
        ),
    )

    # (call_id, seq) is the key: re-archiving the same call inserts nothing twice.
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    spoken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fallback: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Kept by a trigger (migrations 0005, 0006) for memory/search: the call's caller, the text's words,
    # and each word hashed with the caller's id, so that the index has one short entry per caller and word.
    caller_id: Mapped[int | None] = mapped_column(BigInteger)
    search: Mapped[str | None] = mapped_column(TSVECTOR, deferred=True)
    search_keys: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger), deferred=True)


class SummaryJob(Base):
    """A finished call waiting to be summarised: queued in the archive's own transaction, so it is as
    durable as the call, and deleted in the same transaction that stores the summary (idempotence)."""

    __tablename__ = "summary_jobs"
    __table_args__ = (Index("ix_summary_jobs_not_before", "not_before"),)

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)


class Erasure(Base):
    """A tombstone: the caller's data up to `erased_at` was erased and must not be written again."""

    __tablename__ = "erasures"

    bot_number: Mapped[str] = mapped_column(String(32), primary_key=True)
    caller_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SearchConfig(Base):
    """The one text-search configuration the search vectors are built with (set from the settings)."""

    __tablename__ = "search_config"
    __table_args__ = (CheckConstraint("id", name="one_row"),)

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=true())
    config: Mapped[str] = mapped_column(REGCONFIG, server_default="english")
