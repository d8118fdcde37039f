"""Caller trust: each call says whether its caller was verified, and a call kept apart from its caller's
memory is archived without touching it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_SIGNATURE = (
    "callmemory_archive_call(text, text, text, text, text, timestamptz, timestamptz, text, text, text, "
    "integer[], text[], text[], timestamptz[], boolean[])"
)
_SIGNATURE = _OLD_SIGNATURE.removesuffix(")") + ", boolean, boolean)"

# 0004's function with two more parameters: whether the caller was verified (kept on the call), and
# whether the call was kept apart from the caller's memory (core/trust.py). Such a call is archived
# under its number, but moves no counter, topic or prepared greeting, and queues no summary job: what
# an unverified caller said must not become the caller's memory.
_CREATE = """
CREATE FUNCTION callmemory_archive_call(
    p_bot_number text,
    p_caller_hash text,
    p_caller_number text,
    p_platform text,
    p_external_id text,
    p_started_at timestamptz,
    p_ended_at timestamptz,
    p_end_reason text,
    p_summary text,
    p_topic text,
    p_seq integer[],
    p_role text[],
    p_text text[],
    p_spoken_at timestamptz[],
    p_fallback boolean[],
    p_caller_verified boolean,
    p_apart boolean
) RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_caller_id bigint;
    v_call_id bigint;
BEGIN
    BEGIN
        INSERT INTO callers AS c (bot_number, caller_hash, caller_number, first_seen_at, last_seen_at)
        VALUES (p_bot_number, p_caller_hash, p_caller_number, p_started_at, p_ended_at)
        ON CONFLICT (bot_number, caller_hash) DO UPDATE SET
            last_seen_at = greatest(c.last_seen_at, excluded.last_seen_at),
            caller_number = coalesce(excluded.caller_number, c.caller_number)
        RETURNING c.id INTO v_caller_id;

        IF EXISTS (
            SELECT 1 FROM erasures e
            WHERE e.bot_number = p_bot_number
              AND e.caller_hash = p_caller_hash
              AND e.erased_at >= p_started_at
        ) THEN
            RAISE EXCEPTION 'caller erased after the call began' USING ERRCODE = 'CM001';
        END IF;
    EXCEPTION WHEN SQLSTATE 'CM001' THEN
        RETURN 'erased';
    END;

    INSERT INTO calls AS k (
        platform, external_id, caller_id, started_at, ended_at, end_reason, turn_count, summary,
        caller_verified
    )
    VALUES (
        p_platform, p_external_id, v_caller_id, p_started_at, p_ended_at, p_end_reason,
        coalesce(cardinality(p_seq), 0), p_summary, p_caller_verified
    )
    ON CONFLICT (platform, external_id) DO NOTHING
    RETURNING k.id INTO v_call_id;
    IF v_call_id IS NULL THEN
        RETURN 'already_archived';
    END IF;

    INSERT INTO turns (call_id, seq, role, text, spoken_at, fallback)
    SELECT v_call_id, t.seq, t.role, t.text, t.spoken_at, t.fallback
    FROM unnest(p_seq, p_role, p_text, p_spoken_at, p_fallback) AS t(seq, role, text, spoken_at, fallback)
    ON CONFLICT (call_id, seq) DO NOTHING;

    IF p_apart THEN
        RETURN 'stored';
    END IF;

    INSERT INTO summary_jobs (call_id) VALUES (v_call_id);

    UPDATE callers AS c SET
        call_count = c.call_count + 1,
        last_topic = CASE WHEN n.newer THEN c.last_topic ELSE coalesce(p_topic, c.last_topic) END,
        next_greeting = CASE WHEN n.newer THEN c.next_greeting END
    FROM (
        SELECT EXISTS (
            SELECT 1 FROM calls WHERE caller_id = v_caller_id AND started_at > p_started_at
        ) AS newer
    ) AS n
    WHERE c.id = v_caller_id;

    RETURN 'stored';
END
$fn$
"""


def _create_0004() -> str:
    """0004's function as 0004 wrote it: the downgrade puts back exactly what was there."""
    spec = importlib.util.spec_from_file_location(
        "callmemory_migration_0004", Path(__file__).with_name("0004_archive_function.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.CREATE)


def upgrade() -> None:
    op.add_column(
        "calls", sa.Column("caller_verified", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute(f"DROP FUNCTION {_OLD_SIGNATURE}")
    op.execute(_CREATE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {_SIGNATURE}")
    op.execute(_create_0004())
    op.drop_column("calls", "caller_verified")
