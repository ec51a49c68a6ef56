"""The access rule with sharing, row by row: who may read or manage (cancel/delete/retry) a job,
and who may share it, given the caller's identity and the grants in the store. No I/O beyond the
in-memory grant store; the real-process walk is tests/auth/test_sharing.py."""

from __future__ import annotations

import grpc
import pytest

from tests.support import run
from workmesh.services.core.auth import Identity, MemoryGrants, new_grant, parse_label
from workmesh.services.core.errors import InvalidArgument, NotFound, PermissionDenied, WorkmeshError
from workmesh.services.gateway._access import MANAGE, READ, SHARE, check_job, list_filter
from workmesh.services.gateway.store import JobRecord

USER = frozenset({"jobs:read", "jobs:submit"})
ALICE_JOB = JobRecord(
    job_id="j-alice",
    workflow_type="echo",
    params={},
    labels={"workmesh.tenant": "acme", "workmesh.user": "alice", "project": "harbour-north"},
)
BOBS_JOB = JobRecord(
    job_id="j-bob",
    workflow_type="echo",
    params={},
    labels={"workmesh.tenant": "acme", "workmesh.user": "bob", "project": "harbour-north"},
)
OTHER_JOB = JobRecord(
    job_id="j-other", workflow_type="echo", params={}, labels={"workmesh.tenant": "acme", "workmesh.user": "alice"}
)


def who(subject: str, tenant: str = "acme", scopes=USER, groups=()) -> Identity:
    return Identity(tenant=tenant, subject=subject, scopes=frozenset(scopes), groups=frozenset(groups))


GRANTS = [
    new_grant("acme", "bob", job_id="j-alice", created_by="alice"),  # bob reads j-alice
    new_grant("acme", "erin", job_id="j-alice", level="manage", created_by="alice"),  # erin manages it
    new_grant("acme", "designers", group=True, label="project=harbour-north", owner="alice", created_by="alice"),
    new_grant("acme", "ops-team", group=True, label="project=harbour-north", level="manage", owner="alice"),
    new_grant("globex", "carol", job_id="j-alice"),  # another tenant's grant never applies
]
OK, DENIED, MISSING = "ok", PermissionDenied, NotFound
ROWS = [
    # caller, job, action, expected
    (who("alice"), ALICE_JOB, READ, OK),
    (who("alice"), ALICE_JOB, MANAGE, OK),
    (who("alice"), ALICE_JOB, SHARE, OK),
    (who("bob"), ALICE_JOB, READ, OK),
    (who("bob"), ALICE_JOB, MANAGE, DENIED),
    (who("bob"), ALICE_JOB, SHARE, DENIED),
    (who("bob"), OTHER_JOB, READ, DENIED),  # a job grant is of that job only
    (who("erin"), ALICE_JOB, READ, OK),
    (who("erin"), ALICE_JOB, MANAGE, OK),
    (who("erin"), ALICE_JOB, SHARE, DENIED),  # a grantee never shares on
    (who("dan", groups=["designers"]), ALICE_JOB, READ, OK),  # by the label, through a group
    (who("dan", groups=["designers"]), ALICE_JOB, MANAGE, DENIED),
    (who("dan", groups=["designers"]), OTHER_JOB, READ, DENIED),  # no project label
    (who("dan", groups=["designers"]), BOBS_JOB, READ, DENIED),  # alice's label shares alice's jobs only
    (who("dan", groups=["designers", "ops-team"]), ALICE_JOB, MANAGE, OK),  # the highest level wins
    (who("designers"), ALICE_JOB, READ, DENIED),  # a subject named like the group is not in it
    (who("dan"), ALICE_JOB, READ, DENIED),
    (who("carol", tenant="globex"), ALICE_JOB, READ, MISSING),  # never across tenants
    (who("bob", scopes={"jobs:submit"}), ALICE_JOB, READ, DENIED),  # the scope comes first
    (who("erin", scopes={"jobs:read"}), ALICE_JOB, MANAGE, DENIED),
    (who("ops", scopes=USER | {"jobs:manage"}), ALICE_JOB, SHARE, OK),
    (who("root", tenant="platform", scopes={"admin"}), ALICE_JOB, SHARE, OK),
]


@pytest.mark.parametrize(("identity", "record", "action", "expected"), ROWS)
def test_access_row(identity, record, action, expected):
    async def body():
        grants = MemoryGrants()
        for grant in GRANTS:
            await grants.create_grant(grant)
        if expected == OK:
            await check_job(record, action, grants, identity)
        else:
            with pytest.raises(expected) as raised:
                await check_job(record, action, grants, identity)
            # a job's rule names the field; a missing scope names the scope
            assert raised.value.message.startswith(("job_id: ", "this call needs the scope"))

    run(body())


def test_without_a_grant_store_nothing_is_shared():
    async def body():
        with pytest.raises(PermissionDenied, match="its owner can share it"):
            await check_job(ALICE_JOB, READ, None, who("bob"))

    run(body())


def test_read_only_grantee_is_told_what_it_lacks():
    async def body():
        grants = MemoryGrants()
        await grants.create_grant(GRANTS[0])
        with pytest.raises(PermissionDenied, match="for reading only.*manage grant"):
            await check_job(ALICE_JOB, MANAGE, grants, who("bob"))

    run(body())


def test_list_filter_includes_shared_jobs_of_the_tenant_only():
    from workmesh.services.core.auth import reset_identity, use_identity

    token = use_identity(who("dan", groups=["designers"]))
    try:
        assert list_filter(False, False)(ALICE_JOB) is False
        keep = list_filter(False, False, GRANTS)
        assert keep(ALICE_JOB) is True and keep(OTHER_JOB) is False
    finally:
        reset_identity(token)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"job_id": "j", "label": "a=b"}, "job_id"),
        ({}, "job_id"),
        ({"label": "project"}, "label"),
        ({"label": "=x"}, "label"),
        ({"label": "project="}, "label"),
        ({"label": "workmesh.user=bob"}, "label"),
        ({"label": "bad key=x"}, "label"),
        ({"job_id": "j", "level": "write"}, "level"),
    ],
)
def test_bad_grants_name_the_field(kw, field):
    with pytest.raises(InvalidArgument) as raised:
        new_grant("acme", "bob", **kw)
    assert isinstance(raised.value, WorkmeshError) and raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message.startswith(f"{field}: ")


def test_bad_grantee():
    for grantee in ("", " bob", "x" * 301):
        with pytest.raises(InvalidArgument, match="^grantee: "):
            new_grant("acme", grantee, job_id="j")


def test_parse_label():
    assert parse_label("project=harbour-north") == ("project", "harbour-north")
    assert parse_label("a/b.c=x=y") == ("a/b.c", "x=y")
