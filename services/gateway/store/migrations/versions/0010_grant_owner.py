"""Sharing (issue 11): a label grant covers the jobs of one owner (the sharer's own), so that
another subject's job carrying the same label is not shared by it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_grants") as batch:
        batch.add_column(sa.Column("owner", sa.String(300), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("job_grants") as batch:
        batch.drop_column("owner")
