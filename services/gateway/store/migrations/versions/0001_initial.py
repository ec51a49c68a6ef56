"""Initial job store: jobs, job_events, attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)

# PostgreSQL: every statement inserting events announces them (NOTIFY is delivered at COMMIT)
# with "<job_id> <highest new seq>" per job, comma-separated, at most 80 jobs per notification
# (payloads must stay under 8000 bytes) — WatchJob on any replica wakes on it.
_NOTIFY_FUNCTION = """
CREATE FUNCTION workmesh_notify_job_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('workmesh_jobs', string_agg(job_id || ' ' || seq, ','))
    FROM (SELECT job_id, max(seq) AS seq, row_number() OVER () AS n FROM new_events GROUP BY job_id) AS latest
    GROUP BY (n - 1) / 80;
    RETURN NULL;
END
$$
"""
_NOTIFY_TRIGGER = """
CREATE TRIGGER job_events_notify AFTER INSERT ON job_events
REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION workmesh_notify_job_events()
"""


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("pos", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False, unique=True),
        sa.Column("workflow_type", sa.String(200), nullable=False),
        sa.Column("params", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("started_at", _TS),
        sa.Column("finished_at", _TS),
        sa.Column("timeout_s", sa.Float),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("instance_id", sa.String(300), nullable=False),
        sa.Column("progress", sa.LargeBinary),
        sa.Column("result", sa.LargeBinary),
        sa.Column("error", sa.LargeBinary),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("not_before", _TS),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_until", _TS),
    )
    op.create_index("ix_jobs_type_pos", "jobs", ["workflow_type", "pos"])
    op.create_index("ix_jobs_status_pos", "jobs", ["status", "pos"])
    op.create_index("ix_jobs_lease_owner", "jobs", ["lease_owner"])
    op.create_table(
        "job_events",
        sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("time", _TS, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "attempts",
        sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("instance_id", sa.String(300), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY_FUNCTION)
        op.execute(_NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER job_events_notify ON job_events")
        op.execute("DROP FUNCTION workmesh_notify_job_events()")
    op.drop_table("attempts")
    op.drop_table("job_events")
    op.drop_table("jobs")
