"""Sharing (issue 11): one row per grant of read or manage access to a job, or to the jobs with
a label value, given to a subject or a group of the tenant.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_grants",
        sa.Column("grant_id", sa.String(16), primary_key=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("grantee", sa.String(300), nullable=False),
        sa.Column("is_group", sa.Boolean, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("label_key", sa.String(63), nullable=False),
        sa.Column("label_value", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_job_grants_grantee", "job_grants", ["tenant", "grantee"])


def downgrade() -> None:
    op.drop_index("ix_job_grants_grantee", "job_grants")
    op.drop_table("job_grants")
