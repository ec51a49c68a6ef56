"""The notification outbox: one row per (job, webhook or e-mail target), due when the job ends.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)  # the store's UtcDateTime (naive UTC text on SQLite)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("delivery_id", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.job_id", ondelete="CASCADE"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", _TS, nullable=False),
        sa.Column("first_at", _TS),
        sa.Column("last_error", sa.Text, nullable=False),
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "next_at"])
    op.create_index("ix_notifications_job", "notifications", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_job", "notifications")
    op.drop_index("ix_notifications_due", "notifications")
    op.drop_table("notifications")
