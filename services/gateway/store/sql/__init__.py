"""The SQL job store (SQLite or PostgreSQL through SQLAlchemy): schema, statements, group commit."""
