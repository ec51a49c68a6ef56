"""The workflow types a gateway has seen, kept in the job store's database.

One row per type: its newest declaration (a serialized ``WorkflowType``) and when a live worker
last served it. A restarted gateway — or another replica — reads them back, so that jobs of a
type whose workers are all down for the moment are still accepted (they wait QUEUED) and
validated against the declaration they were written for.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from workmesh.services.gateway.store.sql._schema import UtcDateTime, metadata
from workmesh.v1 import common_pb2

workflow_types = sa.Table(
    "workflow_types",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("declaration", sa.LargeBinary, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
)


@dataclasses.dataclass
class RememberTypes:
    """Upsert (declaration, last seen) per type; an older `last_seen` never wins."""

    items: Sequence[tuple[common_pb2.WorkflowType, dt.datetime]]

    def run(self, conn: sa.Connection, batch: object) -> None:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for declaration, seen in self.items:
            statement = insert(workflow_types).values(
                name=declaration.name, declaration=declaration.SerializeToString(), last_seen=seen
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[workflow_types.c.name],
                    set_={"declaration": statement.excluded.declaration, "last_seen": statement.excluded.last_seen},
                    where=workflow_types.c.last_seen <= statement.excluded.last_seen,
                )
            )


@dataclasses.dataclass
class ForgetTypes:
    """Delete the rows of types nobody served since `before`."""

    names: Sequence[str]
    before: dt.datetime

    def run(self, conn: sa.Connection, batch: object) -> None:
        if self.names:
            conn.execute(
                sa.delete(workflow_types).where(
                    workflow_types.c.name.in_(list(self.names)), workflow_types.c.last_seen < self.before
                )
            )


def read_types(conn: sa.Connection) -> list[tuple[common_pb2.WorkflowType, dt.datetime]]:
    out = []
    for row in conn.execute(sa.select(workflow_types)):
        declaration = common_pb2.WorkflowType()
        declaration.ParseFromString(row.declaration)
        out.append((declaration, row.last_seen))
    return out
