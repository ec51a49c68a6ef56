"""The scheduler's durable state: decayed usage per owner and the runtimes of finished jobs.

``fair_usage``: one row per (tenant, user), decayed worker-seconds as of a wall-clock time,
shared by every replica. ``job_runtimes``: runtime per succeeded job with its type, version and
numeric params, which EstimateJob learns from (kept apart from jobs, so retention does not
erase the history).

Revision ID: 0004
Revises: 0003w
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003w"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fair_usage",
        sa.Column("tenant", sa.String(200), primary_key=True),
        sa.Column("user", sa.String(200), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("as_of", sa.Float, nullable=False),
    )
    op.create_table(
        "job_runtimes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("workflow_type", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("runtime_s", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=False),
    )
    op.create_index("ix_job_runtimes_type_version", "job_runtimes", ["workflow_type", "version"])


def downgrade() -> None:
    op.drop_index("ix_job_runtimes_type_version", "job_runtimes")
    op.drop_table("job_runtimes")
    op.drop_table("fair_usage")
