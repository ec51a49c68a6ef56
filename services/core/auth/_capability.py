"""Series write capabilities: what lets a worker write (only) the series of the job it runs.

With authentication on, the gateway signs one capability per attempt and hands it to the worker
in ``ExecuteRequest.series_token``; the worker SDK sends it as the ``workmesh-series-capability``
metadata of its WriteSeries (and restart DeleteSeries) calls, and the results service refuses
those calls without a valid one. A capability is an HS256 JWT (PyJWT) signed with
``WORKMESH_SERIES_KEY``, a key the gateway and the results service share and nobody else holds,
with the claims:

* ``aud``: ``workmesh:series`` (a user JWT verified elsewhere never has it, and the key differs
  from ``WORKMESH_JWT_SECRET``, so neither kind of token passes for the other);
* ``job``, ``attempt``: the attempt it was issued for (attempt 0: the gateway itself, deleting a
  job's series);
* ``op``: ``write`` (an attempt), ``delete`` (the gateway's DeleteJob), ``grant`` (the
  gateway's GrantSeriesReader/RevokeSeriesReader, adding or removing an external reader) or
  ``read`` (the gateway's HTTP series routes, after applying the job rules to the caller, and
  the expiring read tokens of external readers of a Parquet store; ``jobs`` then lists every
  job the read may name, ``reader`` names an external reader);
* ``owner_tenant``, ``owner_subject``: the job's owner, which the results service records with
  the job's series so that reads follow the job's access rules;
* ``exp``: the attempt's timeout plus a margin, or ``WORKMESH_SERIES_TOKEN_TTL`` for a job without
  one (default 24 h: a job may run for hours and open its series late; the capability is checked
  when a call begins).

The gateway signs one per attempt, on the dispatch path: it builds the compact JWS itself (RFC
7515, the bytes PyJWT would produce: header ``{"alg":"HS256","typ":"JWT"}``, HMAC-SHA256) in a
few microseconds, where ``jwt.encode`` spends most of 30 µs checking the key's format on every
call; verification stays PyJWT's.

Every failure names its reason, never the token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import json.encoder
import time
from dataclasses import dataclass

import jwt

from workmesh.services.core.errors import PermissionDenied, Unauthenticated

__all__ = [
    "CAPABILITY_METADATA",
    "DELETE",
    "GRANT",
    "READ",
    "WRITE",
    "SeriesCapabilities",
    "WriteGrant",
    "capability_of",
]

CAPABILITY_METADATA = "workmesh-series-capability"
AUDIENCE = "workmesh:series"
WRITE = "write"
DELETE = "delete"
GRANT = "grant"
READ = "read"
_MARGIN_S = 300.0  # past the attempt's own timeout: the last flush and close still pass
_MAX_BYTES = 4096
_HEADER = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # base64url of {"alg":"HS256","typ":"JWT"}
_BLOCK = 64  # SHA-256's block size, HMAC's key length
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_quote = json.encoder.encode_basestring_ascii  # a JSON string, as json.dumps writes it (ASCII)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True)
class WriteGrant:
    """A verified capability: whose series may be written or deleted, by which attempt."""

    job_id: str
    attempt: int
    op: str
    tenant: str
    subject: str
    jobs: tuple[str, ...] = ()

    def check_read(self, job_ids: list[str] | tuple[str, ...]) -> None:
        """Raise PermissionDenied unless this is the gateway's read capability for every job."""
        if self.op != READ:
            raise PermissionDenied(f"the series capability allows {self.op!r}, a read needs {READ!r}")
        for i, job_id in enumerate(job_ids):
            if job_id not in self.jobs:
                raise PermissionDenied(f"job_ids[{i}]: the series read capability does not name job {job_id!r}")

    def check(self, job_id: str, ops: tuple[str, ...] = (WRITE,)) -> None:
        """Raise PermissionDenied unless this grant is for `job_id` and one of `ops`."""
        if self.job_id != job_id:
            raise PermissionDenied(
                f"key.job_id: the series write capability is for job {self.job_id!r}, not {job_id!r}; "
                f"a worker writes only the series of the job it runs"
            )
        if self.op not in ops:
            raise PermissionDenied(
                f"job_id: the series capability of job {job_id!r} allows {self.op!r}, this call needs {ops[-1]!r}"
            )


def capability_of(metadata) -> str | None:
    """The capability in a call's invocation metadata (None when it has none)."""
    for key, value in metadata or ():
        if key == CAPABILITY_METADATA:
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


class SeriesCapabilities:
    """Issues (gateway) and verifies (results service) series write capabilities.

    Args:
        key: the shared HS256 key (``WORKMESH_SERIES_KEY``, at least 32 characters).
        ttl: lifetime of a capability of a job without a timeout, in seconds.
        leeway: clock skew allowed between the gateway and the results service, in seconds.
    """

    def __init__(self, key: str, *, ttl: float = 24 * 3600.0, leeway: float = 10.0) -> None:
        if len(key) < 32:
            raise ValueError("WORKMESH_SERIES_KEY: must be at least 32 characters (256 bits for HS256)")
        self._key = key
        # HMAC-SHA256 (RFC 2104) from two SHA-256 states keyed once, copied per signature:
        # copying a hashlib state is several times cheaper than copying an ``hmac`` object.
        raw = key.encode()
        if len(raw) > _BLOCK:
            raw = hashlib.sha256(raw).digest()
        raw = raw.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(raw.translate(_IPAD))
        self._outer = hashlib.sha256(raw.translate(_OPAD))
        self.ttl = ttl
        self.leeway = leeway

    def issue(
        self,
        job_id: str,
        attempt: int,
        *,
        tenant: str,
        subject: str,
        op: str = WRITE,
        timeout_s: float | None = None,
        lifetime: float | None = None,
        now: float | None = None,
        jobs: list[str] | tuple[str, ...] = (),
        reader: str = "",
    ) -> str:
        """A capability for `attempt` of `job_id`, owned by (`tenant`, `subject`), valid for
        `lifetime` seconds (default: the attempt's `timeout_s` plus a margin, else the ttl)."""
        now = time.time() if now is None else now
        if lifetime is None:
            lifetime = timeout_s + _MARGIN_S if timeout_s else self.ttl
        if jobs or reader or type(attempt) is not int:
            claims = {
                "aud": AUDIENCE,
                "job": job_id,
                "attempt": attempt,
                "op": op,
                "owner_tenant": tenant,
                "owner_subject": subject,
                "iat": int(now),
                "exp": int(now + lifetime),
            }
            if jobs:
                claims["jobs"] = list(jobs)
            if reader:
                claims["reader"] = reader
            payload = json.dumps(claims, separators=(",", ":"))
        else:
            # An attempt's capability (the dispatch path): the same bytes json.dumps makes of
            # the claims above, without building an encoder per call.
            payload = (
                f'{{"aud":"{AUDIENCE}","job":{_quote(job_id)},"attempt":{attempt},"op":{_quote(op)},'
                f'"owner_tenant":{_quote(tenant)},"owner_subject":{_quote(subject)},'
                f'"iat":{int(now)},"exp":{int(now + lifetime)}}}'
            )
        body = _HEADER + b"." + _b64(payload.encode())
        inner = self._inner.copy()
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return (body + b"." + _b64(outer.digest())).decode()

    def deleting(self, job_id: str) -> str:
        """The gateway's own short capability to delete every series of `job_id` (DeleteJob)."""
        return self.issue(job_id, 0, tenant="", subject="", op=DELETE, lifetime=60.0)

    def granting(self, job_id: str) -> str:
        """The gateway's short capability to add or remove an external reader of `job_id`."""
        return self.issue(job_id, 0, tenant="", subject="", op=GRANT, lifetime=60.0)

    def reading(self, job_ids: list[str] | tuple[str, ...]) -> str:
        """The gateway's short capability to read the series of `job_ids` for a caller it checked."""
        return self.issue(job_ids[0], 0, tenant="", subject="", op=READ, lifetime=60.0, jobs=job_ids)

    def verify(self, token: str | None, job_id: str, *, ops: tuple[str, ...] = (WRITE,)) -> WriteGrant:
        """Check a call's capability for `job_id` (:meth:`decode`, then :meth:`WriteGrant.check`).

        Raises:
            Unauthenticated: missing, malformed, forged or expired (the reason, never the token).
            PermissionDenied: a valid capability of another job, or for another operation.
        """
        grant = self.decode(token)
        grant.check(job_id, ops)
        return grant

    def decode(self, token: str | None) -> WriteGrant:
        """The grant of a capability whose signature, audience and expiry hold.

        Raises:
            Unauthenticated: missing, malformed, forged or expired (the reason, never the token).
        """
        if not token:
            raise Unauthenticated(
                f"missing series write capability: send the metadata {CAPABILITY_METADATA!r} with "
                f"the capability the gateway gave the attempt (ExecuteRequest.series_token)"
            )
        if len(token) > _MAX_BYTES:
            raise Unauthenticated(f"the series capability is longer than {_MAX_BYTES} bytes")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                leeway=self.leeway,
                options={"require": ["exp", "aud", "job", "attempt", "op"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the series capability has expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the series capability has an invalid signature") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the series capability has the wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the series capability lacks the claim {exc.claim!r}") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("the series capability is malformed") from None
        try:
            return WriteGrant(
                str(claims["job"]),
                int(claims["attempt"]),
                str(claims["op"]),
                str(claims.get("owner_tenant", "")),
                str(claims.get("owner_subject", "")),
                tuple(str(j) for j in claims.get("jobs") or ()),
            )
        except (TypeError, ValueError):
            raise Unauthenticated("the series capability is malformed") from None
