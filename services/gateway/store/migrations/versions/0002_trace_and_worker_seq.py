"""Jobs keep their trace context and the last worker event seq of the current attempt.

``trace_parent``: the W3C traceparent of the job's submit span, so every attempt (on any
replica, after any restart) joins the job's trace. ``worker_seq``: the last ``WorkerEvent.seq``
whose job event is stored; a gateway that takes over a running job re-attaches to its worker
with ``Attach(after_seq=worker_seq)``, so no event is stored twice and nothing is recomputed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("trace_parent", sa.String(512), nullable=False, server_default=""))
        batch.add_column(sa.Column("worker_seq", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("worker_seq")
        batch.drop_column("trace_parent")
