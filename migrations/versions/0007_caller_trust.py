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
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _0004() -> ModuleType:
    """Migration 0004, whose function this one changes (0004 is never edited, like every migration)."""
    spec = importlib.util.spec_from_file_location(
        "callmemory_migration_0004", Path(__file__).with_name("0004_archive_function.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# 0004's function with two more parameters: whether the caller was verified (kept on the call), and
# whether the call was kept apart from the caller's memory (core/trust.py). Such a call is archived
# under its number, but moves no counter, topic or prepared greeting, and queues no summary job: what
# an unverified caller said must not become the caller's memory. Written as the three changes to 0004's
# text, each of which must apply exactly once.
_CHANGES = (
    (
        "    p_fallback boolean[]\n) RETURNS text",
        "    p_fallback boolean[],\n    p_caller_verified boolean,\n    p_apart boolean\n) RETURNS text",
    ),
    (
        "(platform, external_id, caller_id, started_at, ended_at, end_reason, turn_count, summary)\n"
        "    VALUES (\n"
        "        p_platform, p_external_id, v_caller_id, p_started_at, p_ended_at, p_end_reason,\n"
        "        coalesce(cardinality(p_seq), 0), p_summary\n",
        "(platform, external_id, caller_id, started_at, ended_at, end_reason, turn_count, summary,\n"
        "         caller_verified)\n"
        "    VALUES (\n"
        "        p_platform, p_external_id, v_caller_id, p_started_at, p_ended_at, p_end_reason,\n"
        "        coalesce(cardinality(p_seq), 0), p_summary, p_caller_verified\n",
    ),
    (
        "    INSERT INTO summary_jobs (call_id) VALUES (v_call_id);\n",
        "    IF p_apart THEN\n        RETURN 'stored';\n    END IF;\n\n"
        "    INSERT INTO summary_jobs (call_id) VALUES (v_call_id);\n",
    ),
)


def _create_0007() -> str:
    create = str(_0004().CREATE)
    for old, new in _CHANGES:
        if create.count(old) != 1:
            raise RuntimeError(f"migration 0007: 0004's function no longer reads {old!r}")
        create = create.replace(old, new)
    return create


def upgrade() -> None:
    op.add_column(
        "calls", sa.Column("caller_verified", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute(f"DROP FUNCTION {_0004().SIGNATURE}")
    op.execute(_create_0007())


def downgrade() -> None:
    old = _0004()
    op.execute(f"DROP FUNCTION {old.SIGNATURE.removesuffix(')')}, boolean, boolean)")
    op.execute(old.CREATE)
    op.drop_column("calls", "caller_verified")
