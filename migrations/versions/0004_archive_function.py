"""callmemory_archive_call(): a finished call archived in one statement, one round trip

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = (
    "callmemory_archive_call(text, text, text, text, text, timestamptz, timestamptz, text, text, text, "
    "integer[], text[], text[], timestamptz[], boolean[])"
)

# VOLATILE (the default) on purpose: in READ COMMITTED each statement of a volatile function takes a
# fresh snapshot, so the erasure check sees a tombstone committed while the upsert waited for its lock.
CREATE = """
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
    p_fallback boolean[]
) RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_caller_id bigint;
    v_call_id bigint;
BEGIN
    -- A sub-block, so that an erased caller's upsert is rolled back with it and nothing is left.
    BEGIN
        INSERT INTO callers AS c (bot_number, caller_hash, caller_number, first_seen_at, last_seen_at)
        VALUES (p_bot_number, p_caller_hash, p_caller_number, p_started_at, p_ended_at)
        ON CONFLICT (bot_number, caller_hash) DO UPDATE SET
            last_seen_at = greatest(c.last_seen_at, excluded.last_seen_at),
            caller_number = coalesce(excluded.caller_number, c.caller_number)
        RETURNING c.id INTO v_caller_id;

        -- Checked after the upsert: a concurrent erasure either waits for this transaction (and then
        -- deletes what it wrote) or has committed its tombstone, which this read then sees.
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

    INSERT INTO calls AS k
        (platform, external_id, caller_id, started_at, ended_at, end_reason, turn_count, summary)
    VALUES (
        p_platform, p_external_id, v_caller_id, p_started_at, p_ended_at, p_end_reason,
        coalesce(cardinality(p_seq), 0), p_summary
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

    INSERT INTO summary_jobs (call_id) VALUES (v_call_id);

    -- Calls can be archived out of order; only the newest call may set the topic. The prepared
    -- greeting is about an older call now; it is prepared anew when this call is summarised, and until
    -- then the template greets with the newest topic.
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


def upgrade() -> None:
    op.execute(CREATE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
