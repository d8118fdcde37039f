"""Long-term memory: callers' rolling summary, profile and prepared greeting; summary jobs; erasures

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("callers", sa.Column("summary", sa.Text(), nullable=True))
    op.add_column(
        "callers",
        sa.Column("profile", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
    )
    op.add_column("callers", sa.Column("next_greeting", sa.Text(), nullable=True))
    op.create_table(
        "summary_jobs",
        sa.Column("call_id", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_summary_jobs_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_summary_jobs")),
    )
    op.create_index("ix_summary_jobs_not_before", "summary_jobs", ["not_before"])
    op.create_table(
        "erasures",
        sa.Column("bot_number", sa.String(32), nullable=False),
        sa.Column("caller_hash", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bot_number", "caller_hash", name=op.f("pk_erasures")),
    )


def downgrade() -> None:
    op.drop_table("erasures")
    op.drop_index("ix_summary_jobs_not_before", table_name="summary_jobs")
    op.drop_table("summary_jobs")
    op.drop_column("callers", "next_greeting")
    op.drop_column("callers", "profile")
    op.drop_column("callers", "summary")
