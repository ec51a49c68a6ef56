"""The workflow types a gateway has seen: declaration and when a worker last served each.

A restarted gateway reads them back, so jobs of a type with no live worker wait QUEUED instead
of being refused (issue 9). Its own branch from 0002: migrations written in parallel (each
creating its own table) coexist, and ``upgrade`` applies every head.

Revision ID: 0003w
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003w"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_types",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("declaration", sa.LargeBinary, nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workflow_types")
