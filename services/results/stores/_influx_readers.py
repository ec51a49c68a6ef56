"""External readers of a job's InfluxDB database: one InfluxDB user each, with READ on it only.

A reader ``NAME`` of job ``J`` is the InfluxDB user ``NAME@<database of J>`` (``@`` occurs in
neither a reader name nor a job id, so the user names its job unambiguously), created with a
random password and ``GRANT READ ON <database>``; the results service's own InfluxDB user must
be an admin to manage them. InfluxDB drops a database's grants with the database, so when a
job's database is created again (a retried attempt starting over) its readers are granted READ
again; deleting the job for good drops its readers' users.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

import structlog

from workmesh.services.clients._model import check_job_id
from workmesh.services.core.errors import AlreadyExists, InvalidArgument, NotFound
from workmesh.services.results.stores._lineproto import ident, literal

if TYPE_CHECKING:
    from workmesh.services.results.stores._influx import InfluxStore

__all__ = ["READER_RULE", "InfluxReaders", "check_reader"]

_READER = re.compile(r"[a-z][a-z0-9-]{0,31}")
READER_RULE = "a lowercase letter first, then lowercase letters, digits or '-', at most 32 characters"
log = structlog.get_logger("workmesh.results.influx")


def check_reader(name: str, what: str = "reader") -> str:
    """Raise InvalidArgument naming `what` and the rule unless `name` is a valid reader name."""
    if not _READER.fullmatch(name):
        raise InvalidArgument(what, f"{name[:64]!r} is not a valid reader name: {READER_RULE}")
    return name


class InfluxReaders:
    """Creates, removes and re-grants the reader users of an :class:`InfluxStore`."""

    def __init__(self, store: InfluxStore) -> None:
        self.store = store

    def user(self, job_id: str, reader: str) -> str:
        """The InfluxDB user of `reader` of `job_id`."""
        return f"{check_reader(reader)}@{self.store.database(check_job_id(job_id))}"

    async def users_of(self, db: str) -> list[str]:
        """The reader users of database `db`."""
        result = await self.store.query("SHOW USERS")
        names = [row[0] for s in result[0]["series"] for row in s.get("values") or []]
        return [n for n in names if n.partition("@")[2] == db]

    async def grant(self, job_id: str, reader: str) -> tuple[str, str]:
        """Create `reader` of `job_id` with READ on the job's database; returns (user, password).

        Raises:
            InvalidArgument: a bad reader name or job id.
            NotFound: the job has no series (no database).
            AlreadyExists: the job has this reader already.
        """
        user = self.user(job_id, reader)
        db = await self.store._require(job_id)
        exists = AlreadyExists(f"reader: job {job_id!r} has a reader {reader!r} already (revoke it first)")
        if user in await self.users_of(db):
            raise exists
        password = secrets.token_urlsafe(24)
        try:
            # A random password: a second CREATE of an existing user fails ("user already
            # exists") instead of silently succeeding, which closes the race with another grant.
            await self.store.query(f"CREATE USER {ident(user)} WITH PASSWORD {literal(password)}")
        except InvalidArgument as exc:
            if "already exists" in str(exc):
                raise exists from None
            raise
        try:
            await self.store.query(f"GRANT READ ON {ident(db)} TO {ident(user)}")
        except BaseException:
            await self.store.query(f"DROP USER {ident(user)}")  # no user without its grant
            raise
        return user, password

    async def revoke(self, job_id: str, reader: str) -> str:
        """Drop the user of `reader` of `job_id`; returns the user name.

        Raises:
            NotFound: the job has no such reader.
        """
        user = self.user(job_id, reader)
        try:
            await self.store.query(f"DROP USER {ident(user)}")
        except InvalidArgument as exc:
            if "user not found" in str(exc):
                raise NotFound(f"reader: job {job_id!r} has no reader {reader!r}") from None
            raise
        return user

    async def regrant(self, db: str) -> None:
        """Grant READ on `db` again to its readers (the database was created anew).

        Best effort: a server that has no users (InfluxDB 2.x/3.x through v1 compatibility) or
        credentials that are no admin's only get a debug log.
        """
        try:
            for user in await self.users_of(db):
                await self.store.query(f"GRANT READ ON {ident(db)} TO {ident(user)}")
        except Exception as exc:  # noqa: BLE001 - never fail a write over this
            log.debug("readers not re-granted", db=db, error=str(exc))

    async def drop_all(self, job_id: str) -> int:
        """Drop every reader user of `job_id` (the job is deleted for good); returns how many.

        Never raises: the job's database is gone already, so a user left behind (logged) can
        read nothing, and job ids are not reused.
        """
        try:
            users = await self.users_of(self.store.database(check_job_id(job_id)))
            for user in users:
                await self.store.query(f"DROP USER {ident(user)}")
        except Exception as exc:  # noqa: BLE001 - the delete itself has succeeded
            log.warning("reader users of a deleted job not dropped", job_id=job_id, error=str(exc))
            return 0
        return len(users)
