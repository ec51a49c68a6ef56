"""``workmesh token create|list|revoke``: API tokens through the gateway's TokenAdmin service,
or, with ``--database-url``/``--data-dir``, straight in the job store (the first token of a
deployment, by an operator with database access; a SQLite store only while its gateway is
stopped, since a gateway has its SQLite file to itself).
"""

from __future__ import annotations

import asyncio
import getpass
import socket
from dataclasses import replace
from pathlib import Path

from rich.table import Table

from workmesh.services.cli._client import err, gateway_channel, out, print_json, to_dict
from workmesh.services.core.errors import WorkmeshError
from workmesh.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["token_command"]


def _when(ts) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if ts.seconds else ""


class _DirectAudit:
    """The store's audit log, with the entries marked as made on the store directly: by the
    operating-system user, from this host (there is no caller identity nor peer address)."""

    def __init__(self, store) -> None:
        self._store = store

    async def record_audit(self, entry) -> None:
        where = f"job store directly, from {socket.gethostname()}"
        await self._store.record_audit(replace(entry, subject=entry.subject or f"os:{getpass.getuser()}", peer=where))

    async def list_audit(self, **filters):
        return await self._store.list_audit(**filters)


class _Direct:
    """TokenAdmin's methods on the job store itself: the servicer, called in-process with
    authentication off (whoever can open the database may do anything with it anyway); what it
    does is recorded in the store's audit log all the same."""

    def __init__(self, url: str) -> None:
        self._url = url

    def __getattr__(self, method: str):
        def call(request):
            return asyncio.run(self._call(method, request))

        return call

    async def _call(self, method: str, request):
        # Lazy on purpose: the gateway and the SQL store (~3 s of imports) are needed only with
        # --database-url/--data-dir, not by every `workmesh` command that imports this module.
        from workmesh.services.gateway._tokens import TokenAdminServicer
        from workmesh.services.gateway.http._calls import CallError, unary
        from workmesh.services.gateway.store.sql._store import SqlJobStore

        store = SqlJobStore(self._url, retry_for=5.0)
        try:
            servicer = TokenAdminServicer(store, _DirectAudit(store))
            return await unary(getattr(servicer, method), request)
        except CallError as exc:
            error = WorkmeshError(exc.message)
            error.code = exc.code  # reported as the gateway's status would be
            raise error from None
        finally:
            await store.close()


def _stub(args):
    if args.database_url or args.data_dir:
        url = args.database_url or f"sqlite:///{Path(args.data_dir).expanduser().resolve() / 'jobs.db'}"
        return _Direct(url)
    return admin_pb2_grpc.TokenAdminStub(gateway_channel(args.gateway, args.token, args.ca))


def token_command(args) -> int:
    """Run one ``workmesh token`` action."""
    stub = _stub(args)
    action = args.token_command
    if action == "create":
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        reply = stub.CreateToken(admin_pb2.CreateTokenRequest(tenant=args.tenant, name=args.name, scopes=scopes))
        if args.json:
            print_json(to_dict(reply))
            return 0
        # The secret goes to stdout alone (easy to capture); the advice to stderr.
        print(reply.token)
        err.print(
            f"token {reply.info.name!r} ({reply.info.token_id}) of tenant {reply.info.tenant!r} with "
            f"{', '.join(reply.info.scopes)}: shown once, store it now (e.g. as WORKMESH_TOKEN)"
        )
        return 0
    if action == "list":
        reply = stub.ListTokens(admin_pb2.ListTokensRequest(tenant=args.tenant))
        if args.json:
            print_json([to_dict(t) for t in reply.tokens])
            return 0
        table = Table("TOKEN ID", "TENANT", "NAME", "SCOPES", "CREATED", "BY", "REVOKED")
        for t in reply.tokens:
            table.add_row(
                t.token_id, t.tenant, t.name, ",".join(t.scopes), _when(t.created_at), t.created_by, _when(t.revoked_at)
            )
        out.print(table)
        return 0
    reply = stub.RevokeToken(admin_pb2.RevokeTokenRequest(token_id=args.token_id))
    if args.json:
        print_json(to_dict(reply))
    else:
        print(
            f"revoked {reply.token_id} ({reply.name!r} of tenant {reply.tenant!r}); it stops working within "
            f"the gateway's token cache time (5 s by default)"
        )
    return 0
