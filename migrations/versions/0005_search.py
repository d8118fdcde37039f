"""Full-text search of a caller's archive: a tsvector on each turn and call summary, GIN-indexed by caller

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The vectors are written by triggers, so every path that stores a turn or a summary (the archive
# function of 0004, a late turn, the summary job) keeps them right without knowing of them. The
# text-search configuration they use is the one row of search_config, which the service sets at
# start-up from its setting (see memory/search/postgres.py).
TRIGGERS = (
    """
CREATE FUNCTION callmemory_turn_search() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.caller_id IS NULL THEN
        SELECT caller_id INTO NEW.caller_id FROM calls WHERE id = NEW.call_id;
    END IF;
    NEW.search := to_tsvector((SELECT config FROM search_config), NEW.text);
    RETURN NEW;
END
$fn$
""",
    """
CREATE TRIGGER turns_search BEFORE INSERT OR UPDATE OF text ON turns
    FOR EACH ROW EXECUTE FUNCTION callmemory_turn_search()
""",
    """
CREATE FUNCTION callmemory_call_search() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.search := CASE WHEN NEW.summary IS NULL THEN NULL
                       ELSE to_tsvector((SELECT config FROM search_config), NEW.summary) END;
    RETURN NEW;
END
$fn$
""",
    """
CREATE TRIGGER calls_search BEFORE INSERT OR UPDATE OF summary ON calls
    FOR EACH ROW EXECUTE FUNCTION callmemory_call_search()
""",
)


def upgrade() -> None:
    # btree_gin lets one GIN index hold the caller id beside the words, so a search reads only that
    # caller's entries. It is a trusted extension (PostgreSQL 13+): a database owner may create it, and
    # the embedded PostgreSQL ships it.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.create_table(
        "search_config",
        sa.Column("id", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("config", postgresql.REGCONFIG(), server_default="english", nullable=False),
        sa.CheckConstraint("id", name=op.f("ck_search_config_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_config")),
    )
    op.execute("INSERT INTO search_config DEFAULT VALUES")
    op.add_column("turns", sa.Column("caller_id", sa.BigInteger(), nullable=True))
    op.add_column("turns", sa.Column("search", postgresql.TSVECTOR(), nullable=True))
    op.add_column("calls", sa.Column("search", postgresql.TSVECTOR(), nullable=True))
    op.execute(
        "UPDATE turns SET caller_id = calls.caller_id, search = to_tsvector('english', turns.text) "
        "FROM calls WHERE calls.id = turns.call_id"
    )
    op.execute("UPDATE calls SET search = to_tsvector('english', summary) WHERE summary IS NOT NULL")
    for statement in TRIGGERS:
        op.execute(statement)
    op.create_index("ix_turns_caller_id_search", "turns", ["caller_id", "search"], postgresql_using="gin")
    op.create_index("ix_calls_caller_id_search", "calls", ["caller_id", "search"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_calls_caller_id_search", table_name="calls")
    op.drop_index("ix_turns_caller_id_search", table_name="turns")
    op.execute("DROP TRIGGER calls_search ON calls")
    op.execute("DROP FUNCTION callmemory_call_search()")
    op.execute("DROP TRIGGER turns_search ON turns")
    op.execute("DROP FUNCTION callmemory_turn_search()")
    op.drop_column("calls", "search")
    op.drop_column("turns", "search")
    op.drop_column("turns", "caller_id")
    op.drop_table("search_config")
    # btree_gin stays: other objects of the database may have come to use it since.
