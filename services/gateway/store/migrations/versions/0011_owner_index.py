"""ListJobs by owner (issue 14): an expression index on the owner label and the list order, so a
caller's own jobs (and the console's owner filter) are read newest first without the others'.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The same text as store/sql/_labels.py renders (a database uses an expression index only for
# the very expression it was built on).
_OWNER = {
    "sqlite": "json_extract(labels, '$.\"workmesh.user\"')",
    "postgresql": "(labels ->> 'workmesh.user')",
}


def upgrade() -> None:
    expression = _OWNER[op.get_bind().dialect.name]
    op.execute(f"CREATE INDEX ix_jobs_owner_pos ON jobs ({expression}, pos)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_jobs_owner_pos")
