"""A label's value in SQL, as the job store's queries and its owner index both spell it.

Labels live in one JSON column. The owner label (``workmesh.user``, which every job of an
authenticated or declared user carries) is what ListJobs filters on most — a caller's own jobs
by default, the console's owner filter — so it has an expression index, ``(owner label, pos)``:
newest first within one owner without reading the others' rows. A database uses such an index
only for the very expression it was built on, so :class:`LabelValue` renders that key as a
literal (never a bound parameter), the same text in the index and in every query.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["OWNER_LABEL", "LabelValue", "label_equals"]

OWNER_LABEL = "workmesh.user"  # dispatch._jobqueue.USER_LABEL (the store does not import dispatch)
_LITERAL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")  # safe inside both SQL and JSON-path quotes


class LabelValue(ColumnElement):
    """``labels[key]`` as text (NULL when the job has no such label), `key` rendered literally."""

    type = sa.String()
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's cache key reads these
        ("column", InternalTraversal.dp_clauseelement),
        ("key", InternalTraversal.dp_string),
    ]

    def __init__(self, column: Any, key: str) -> None:
        if not _LITERAL_KEY.fullmatch(key):
            raise ValueError(f"label key {key!r} cannot be written literally")
        self.column = column
        self.key = key


def _column(element: LabelValue, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(LabelValue, "sqlite")
def _sqlite(element: LabelValue, compiler: Any, **kw: Any) -> str:
    return f"json_extract({_column(element, compiler, **kw)}, '$.\"{element.key}\"')"


@compiles(LabelValue, "postgresql")
def _postgres(element: LabelValue, compiler: Any, **kw: Any) -> str:
    return f"({_column(element, compiler, **kw)} ->> '{element.key}')"


def label_equals(column: Any, key: str, value: str) -> Any:
    """``labels[key] == value`` — literal for the owner label (its index), else SQLAlchemy's JSON path."""
    if key == OWNER_LABEL:
        return LabelValue(column, key) == value
    return column[key].as_string() == value
