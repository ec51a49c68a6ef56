"""Alembic environment of the job store: always run programmatically by ``_engine.upgrade``.

The caller passes an open connection in ``config.attributes["connection"]``; there is no
alembic.ini and no URL here, so the migrations run on exactly the database the store opened.
"""

from __future__ import annotations

from alembic import context

from workmesh.services.gateway.store.sql._schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the job store migrations run through workmesh.services.gateway.store.sql._engine.upgrade")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
