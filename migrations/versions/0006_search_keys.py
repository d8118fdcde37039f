"""Search keys per caller: each word of a turn or summary indexed as (caller, word), not as a word

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0005's index held (caller_id, search) side by side, so every word of a search intersected the
# caller's posting list (all their entries) with the word's (every caller's entries that have it): on a
# million turns, milliseconds per word. A key that is the word hashed with the caller's id has one
# posting list per caller and word, a few entries long, and needs no intersection. The hash is
# PostgreSQL's own (the one hash partitioning relies on staying the same across versions); a search
# still checks the row's caller and words, so a collision could never show another caller's turn.
# No pending list (fastupdate off): every search would scan it whole, and turns arrive all the time.
_KEYS_FUNCTION = """
CREATE FUNCTION callmemory_search_keys(caller bigint, words tsvector) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$fn$ SELECT array_agg(hashtextextended(w, caller)) FROM unnest(tsvector_to_array(words)) AS w $fn$
"""

_NO_PENDING_LIST = {"fastupdate": "off"}

# The trigger functions of 0005, with the keys written beside the vector (or, on the way back, not).
_TURN_TRIGGER = """
CREATE OR REPLACE FUNCTION callmemory_turn_search() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.caller_id IS NULL THEN
        SELECT caller_id INTO NEW.caller_id FROM calls WHERE id = NEW.call_id;
    END IF;
    NEW.search := to_tsvector((SELECT config FROM search_config), NEW.text);{keys}
    RETURN NEW;
END
$fn$
"""
_CALL_TRIGGER = """
CREATE OR REPLACE FUNCTION callmemory_call_search() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.search := CASE WHEN NEW.summary IS NULL THEN NULL
                       ELSE to_tsvector((SELECT config FROM search_config), NEW.summary) END;{keys}
    RETURN NEW;
END
$fn$
"""
_KEYS_LINE = "\n    NEW.search_keys := callmemory_search_keys(NEW.caller_id, NEW.search);"


def _triggers(*, keys: bool) -> None:
    for template in (_TURN_TRIGGER, _CALL_TRIGGER):
        op.execute(template.format(keys=_KEYS_LINE if keys else ""))


def upgrade() -> None:
    op.execute(_KEYS_FUNCTION)
    for table in ("turns", "calls"):
        op.add_column(table, sa.Column("search_keys", postgresql.ARRAY(sa.BigInteger()), nullable=True))
        # The triggers fire on the text, not on this column: the backfill leaves the vectors alone.
        op.execute(
            sa.table(table, sa.column("search_keys"), sa.column("caller_id"), sa.column("search"))
            .update()
            .values(search_keys=sa.func.callmemory_search_keys(sa.column("caller_id"), sa.column("search")))
        )
        op.drop_index(f"ix_{table}_caller_id_search", table_name=table)
        op.create_index(
            f"ix_{table}_search_keys",
            table,
            ["search_keys"],
            postgresql_using="gin",
            postgresql_with=_NO_PENDING_LIST,
        )
    _triggers(keys=True)


def downgrade() -> None:
    _triggers(keys=False)
    for table in ("turns", "calls"):
        op.drop_index(f"ix_{table}_search_keys", table_name=table)
        op.create_index(
            f"ix_{table}_caller_id_search", table, ["caller_id", "search"], postgresql_using="gin"
        )
        op.drop_column(table, "search_keys")
    op.execute("DROP FUNCTION callmemory_search_keys(bigint, tsvector)")
