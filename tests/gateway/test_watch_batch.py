"""WatchJobRequest.batch over a real gateway: a batch stream carries the same events, in the same
order, as one event per message; events ready together share a message; a client that does not
ask gets one event per message as before. The messages' bytes are built from the stored events'
bytes (``_watch.batches``), so they are also checked to parse back to exactly those events."""

from __future__ import annotations

import asyncio

from tests.gateway.mesh import Mesh
from tests.store.test_store_contract import new_job, progress, status
from tests.support import run
from workmesh.services.gateway._feeds import entry_of
from workmesh.services.gateway._watch import batches
from workmesh.services.gateway.store import JobUpdate
from workmesh.v1 import common_pb2 as pb
from workmesh.v1 import gateway_pb2 as g

SUCCEEDED = pb.JOB_STATUS_SUCCEEDED


async def _messages(mesh: Mesh, job_id: str, batch: bool, after: int = 0) -> list[pb.JobEvent]:
    return [m async for m in mesh.stub.WatchJob(g.WatchJobRequest(job_id=job_id, after_seq=after, batch=batch))]


def _flat(messages: list[pb.JobEvent]) -> list[pb.JobEvent]:
    events = []
    for message in messages:
        # a batch message holds events and nothing else
        assert message.batch and not message.seq and message.WhichOneof("payload") is None
        events.extend(message.batch)
    return events


def test_a_batch_stream_replays_the_same_events_in_order_in_few_messages() -> None:
    async def main() -> None:
        async with Mesh() as mesh:
            job, _ = await mesh.store.create(new_job())
            for i in range(300):
                await mesh.store.append(job.job_id, [progress(i / 300)])
            await mesh.store.append(job.job_id, [status(SUCCEEDED)], JobUpdate(status=SUCCEEDED))
            plain = await _messages(mesh, job.job_id, batch=False)
            # created, 300 progress, the end: one event per message
            assert [e.seq for e in plain] == list(range(1, 303)) and not any(e.batch for e in plain)
            batched = await _messages(mesh, job.job_id, batch=True)
            events = _flat(batched)
            assert [e.SerializeToString() for e in events] == [e.SerializeToString() for e in plain]
            assert len(batched) < 10  # the replay was ready at once: a few messages, not 302
            # resuming after a seq: the rest, in order
            assert [e.seq for e in _flat(await _messages(mesh, job.job_id, batch=True, after=250))] == list(
                range(251, 303)
            )

    run(main())


def test_a_live_batch_stream_gets_every_event_in_order_up_to_the_end() -> None:
    async def main() -> None:
        async with Mesh() as mesh:
            job, _ = await mesh.store.create(new_job())
            watcher = asyncio.ensure_future(_messages(mesh, job.job_id, batch=True))
            for i in range(40):
                await mesh.store.append(job.job_id, [progress(i / 40), progress((i + 0.5) / 40)])
                if i % 10 == 0:
                    await asyncio.sleep(0.01)  # let the stream catch up now and then
            await mesh.store.append(job.job_id, [status(SUCCEEDED)], JobUpdate(status=SUCCEEDED))
            events = _flat(await asyncio.wait_for(watcher, 30))
            assert [e.seq for e in events] == list(range(1, 83))  # created, 80 progress, end
            assert [e.progress.fraction for e in events[1:-1]] == [j / 80 for j in range(80)]
            assert events[-1].status.status == SUCCEEDED

    run(main())


def test_batches_split_at_the_size_limit_and_an_event_bigger_than_it_goes_alone() -> None:
    entries = [entry_of(pb.JobEvent(seq=i + 1, log=pb.LogLine(message="x" * 90))) for i in range(10)]
    big = entry_of(pb.JobEvent(seq=11, log=pb.LogLine(message="y" * 1000)))
    messages = list(batches([*entries, big], limit=250))
    parsed = [pb.JobEvent.FromString(m) for m in messages]
    assert [len(m.batch) for m in parsed] == [2, 2, 2, 2, 2, 1]
    assert [e.SerializeToString() for m in parsed for e in m.batch] == [e.data for e in [*entries, big]]
    assert list(batches([])) == []
