"""Job ids, page tokens and the Job message made from a stored job."""

from __future__ import annotations

import datetime as dt

import pytest

from workmesh.services.core.errors import InvalidArgument
from workmesh.services.gateway._convert import (
    job_to_proto,
    new_job_id,
    page_token,
    parse_page_token,
)
from workmesh.services.gateway.store import JobRecord
from workmesh.v1 import common_pb2 as c


def test_job_ids_are_unique_and_sort_by_creation():
    ids = [new_job_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


def test_page_token_round_trip():
    assert parse_page_token(page_token("abc123")) == "abc123"
    assert parse_page_token("") is None


@pytest.mark.parametrize("token", ["garbage!", "Zm9v", "YWZ0ZXI6", "%%%"])
def test_bad_page_token_names_the_field(token):
    with pytest.raises(InvalidArgument) as err:
        parse_page_token(token)
    assert err.value.field == "page_token"


def test_job_to_proto_carries_every_field():
    created = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    record = JobRecord(
        job_id="j",
        workflow_type="echo",
        params={"n": c.ParamValue(int_value=3)},
        status=c.JOB_STATUS_FAILED,
        created_at=created,
        updated_at=created,
        attempts=2,
        instance_id="w1",
        progress=c.Progress(fraction=0.5, message="half"),
        error=c.JobError(code="X", message="boom"),
        last_seq=7,
        labels={"a": "b"},
    )
    job = job_to_proto(record)
    assert job.created_at.ToDatetime(dt.UTC) == created
    assert job.params["n"].int_value == 3 and job.status == c.JOB_STATUS_FAILED
    assert job.attempts == 2 and job.instance_id == "w1" and job.last_seq == 7
    assert job.progress.message == "half" and job.error.code == "X" and dict(job.labels) == {"a": "b"}
    assert not job.HasField("started_at") and not job.HasField("result")
