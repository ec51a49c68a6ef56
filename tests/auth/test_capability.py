"""Series write capabilities (no I/O): what the gateway signs and the results service accepts."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.auth.keys import SECRET, hs256
from workmesh.services.core.auth import AuthConfig, SeriesCapabilities
from workmesh.services.core.errors import PermissionDenied, Unauthenticated

KEY = "k" * 40
CAPS = SeriesCapabilities(KEY)


def test_a_capability_names_its_job_attempt_and_owner():
    token = CAPS.issue("job-1", 2, tenant="acme", subject="alice")
    grant = CAPS.verify(token, "job-1")
    assert (grant.job_id, grant.attempt, grant.op, grant.tenant, grant.subject) == (
        "job-1",
        2,
        "write",
        "acme",
        "alice",
    )


def test_the_signed_capability_is_the_jws_pyjwt_makes_of_the_same_claims():
    # The gateway builds the compact JWS itself (it is on the dispatch path): the very bytes.
    for kw in ({}, {"op": "read", "jobs": ["job-1", "jöb-2"], "lifetime": 60.0}, {"reader": "bi", "timeout_s": 9.5}):
        token = CAPS.issue("job-1", 2, tenant="acme", subject="ålice", **kw)
        claims = jwt.decode(token, KEY, algorithms=["HS256"], audience="workmesh:series")
        assert token == jwt.encode(claims, KEY, algorithm="HS256")
        assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    # The attempts' own path (claims written out, HMAC from keyed SHA-256 states): keys longer
    # than SHA-256's block are hashed first, as HMAC does; names are escaped as JSON.
    for key in (KEY, "y" * 64, "z" * 100, "\u00fc" * 40):
        for subject in ("alice", '\u00e5l"i\\ce\n', "\u2603\u2028"):
            token = SeriesCapabilities(key).issue("job-\u00e9", 3, tenant="acme", subject=subject, timeout_s=9.5)
            claims = jwt.decode(token, key, algorithms=["HS256"], audience="workmesh:series")
            assert claims["owner_subject"] == subject
            assert token == jwt.encode(claims, key, algorithm="HS256")
    forged = SeriesCapabilities("x" * 40).issue("job-1", 2, tenant="acme", subject="alice")
    with pytest.raises(Unauthenticated, match="invalid signature"):
        CAPS.verify(forged, "job-1")


def test_lifetime_follows_the_job_timeout_else_the_ttl():
    now = time.time()
    with_timeout = jwt.decode(
        CAPS.issue("j", 1, tenant="t", subject="s", timeout_s=60, now=now), options={"verify_signature": False}
    )
    assert with_timeout["exp"] == int(now + 60 + 300)
    without = jwt.decode(CAPS.issue("j", 1, tenant="t", subject="s", now=now), options={"verify_signature": False})
    assert without["exp"] == int(now + 24 * 3600)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing series write capability"),
        ("", "missing series write capability"),
        ("not-a-jwt", "malformed"),
        (SeriesCapabilities("x" * 40).issue("job-1", 1, tenant="acme", subject="alice"), "invalid signature"),
        (CAPS.issue("job-1", 1, tenant="acme", subject="alice", lifetime=-60), "expired"),
        (hs256(sub="alice", tenant="acme"), "invalid signature"),  # a user JWT is no capability
        (jwt.encode({"job": "job-1", "attempt": 1, "op": "write", "exp": 2**40}, KEY), "claim 'aud'"),
        (jwt.encode({"aud": "other", "job": "job-1", "attempt": 1, "op": "write", "exp": 2**40}, KEY), "audience"),
        (jwt.encode({"aud": "workmesh:series", "job": "job-1", "attempt": 1, "op": "write"}, KEY), "claim 'exp'"),
        (
            jwt.encode({"aud": "workmesh:series", "job": "job-1", "attempt": 1, "op": "write", "exp": 2**40}, KEY)[:-2]
            + "AA",
            "invalid signature",
        ),
        (jwt.encode({"aud": "workmesh:series", "job": "job-1", "op": "w", "exp": 2**40}, None, "none"), "malformed"),
    ],
)
def test_refused_capabilities_are_unauthenticated_with_the_reason_never_the_token(token, reason):
    with pytest.raises(Unauthenticated) as caught:
        CAPS.verify(token, "job-1")
    assert reason in caught.value.message
    if token:
        assert token not in caught.value.message


def test_another_jobs_capability_or_operation_is_permission_denied():
    with pytest.raises(PermissionDenied, match="for job 'job-2', not 'job-1'"):
        CAPS.verify(CAPS.issue("job-2", 1, tenant="acme", subject="alice"), "job-1")
    with pytest.raises(PermissionDenied, match="allows 'write'"):
        CAPS.verify(CAPS.issue("job-1", 1, tenant="acme", subject="alice"), "job-1", ops=("delete",))
    assert CAPS.verify(CAPS.deleting("job-1"), "job-1", ops=("delete",)).op == "delete"


def test_the_key_comes_from_the_environment_and_must_be_long_and_not_the_jwt_secret():
    on = {"WORKMESH_AUTH": "on", "WORKMESH_JWT_SECRET": SECRET}
    assert AuthConfig.from_env(on).capabilities() is None
    assert AuthConfig.from_env({"WORKMESH_SERIES_KEY": KEY}).capabilities() is None  # auth off
    caps = AuthConfig.from_env({**on, "WORKMESH_SERIES_KEY": KEY, "WORKMESH_SERIES_TOKEN_TTL": "2h"}).capabilities()
    assert caps is not None and caps.ttl == 7200
    with pytest.raises(ValueError, match="WORKMESH_SERIES_KEY: must be at least 32"):
        AuthConfig.from_env({**on, "WORKMESH_SERIES_KEY": "short"})
    with pytest.raises(ValueError, match="must differ from WORKMESH_JWT_SECRET"):
        AuthConfig.from_env({**on, "WORKMESH_SERIES_KEY": SECRET})
    assert KEY not in repr(AuthConfig.from_env({**on, "WORKMESH_SERIES_KEY": KEY}))


def test_the_gateways_read_capability_names_every_job_and_nothing_else_reads():
    grant = CAPS.decode(CAPS.reading(["a", "b"]))
    grant.check_read(["b", "a"])
    with pytest.raises(PermissionDenied, match="job_ids\\[1\\]: the series read capability does not name job 'c'"):
        grant.check_read(["a", "c"])
    with pytest.raises(PermissionDenied, match="a read needs 'read'"):
        CAPS.decode(CAPS.issue("a", 1, tenant="acme", subject="alice")).check_read(["a"])
    with pytest.raises(PermissionDenied, match="allows 'read'"):
        CAPS.verify(CAPS.reading(["a"]), "a")  # a read capability never writes
