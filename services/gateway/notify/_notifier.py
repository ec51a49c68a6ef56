"""Notifier: delivers the notifications of ended jobs from the job store's outbox.

It polls the store for due rows (every ``poll`` seconds, and at once after a round that found
work), claims them, and sends each through its channel. A delivered row, or one still failing
``give_up`` seconds after its first attempt, ends with a ``notification`` event in the job's
events; anything else is retried with exponential backoff (with jitter, capped at
``backoff_max`` and at the give-up time, so the give-up is on time). Nothing is kept only in
memory: a gateway killed at any point leaves every undelivered row due in the store, and the
next gateway (or another replica) delivers it — at least once, with the same delivery id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random

from google.protobuf import json_format

from workmesh.services.core.errors import WorkmeshError
from workmesh.services.gateway._convert import job_to_proto
from workmesh.services.gateway.notify._channels import DeliveryFailed, EmailSender, Sender, WebhookSender
from workmesh.services.gateway.notify._config import NotifyConfig
from workmesh.services.gateway.notify._targets import public_address
from workmesh.services.gateway.store import Delivery, JobStore
from workmesh.v1 import common_pb2

__all__ = ["Notifier", "summary_body"]

log = logging.getLogger("workmesh.gateway.notify")


def summary_body(job, delivery: Delivery) -> bytes:
    """The webhook/e-mail JSON: the delivery id, the event type and the job as GetJob shows it
    (big parameter values left out, as in list views)."""
    summary = {
        "type": "job.finished",
        "deliveryId": delivery.delivery_id,
        "job": json_format.MessageToDict(job_to_proto(job, list_view=True), always_print_fields_with_no_presence=True),
    }
    return json.dumps(summary, separators=(",", ":"), sort_keys=True).encode()


class Notifier:
    """The delivery loop of one gateway; :meth:`start` and :meth:`stop` it with the gateway.

    Args:
        store: the job store holding the outbox.
        config: channels, backoff, give-up time, poll interval.
    """

    def __init__(self, store: JobStore, config: NotifyConfig) -> None:
        self._store = store
        self._config = config
        self._senders: dict[str, Sender] = {"webhook": WebhookSender(config), "email": EmailSender(config)}
        # A claim holds a row for longer than one attempt can take, then it is due again.
        self._hold = 2 * config.timeout + 5.0
        self._task: asyncio.Task | None = None
        self._inflight: set[asyncio.Task] = set()
        self.delivered = 0
        self.failed_attempts = 0
        self.given_up = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gateway-notify")

    async def stop(self) -> None:
        """Stop polling and cancel deliveries in flight (their rows stay due: at least once)."""
        tasks = [t for t in (self._task, *self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        for sender in self._senders.values():
            await sender.close()

    async def _run(self) -> None:
        while True:
            found = 0
            free = self._config.concurrency - len(self._inflight)
            if free > 0:
                try:
                    claimed = await self._store.claim_deliveries(free, self._hold)
                except WorkmeshError as exc:  # store unavailable: the rows wait in the store
                    log.warning("notifications: cannot claim due deliveries: %s", exc)
                    claimed = []
                for delivery in claimed:
                    task = asyncio.get_running_loop().create_task(self._deliver(delivery))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                found = len(claimed)
            if not found or found < free:
                await asyncio.sleep(self._config.poll)
            elif self._inflight and len(self._inflight) >= self._config.concurrency:
                await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            job = await self._store.get(delivery.job_id)
            if job is None:
                return  # deleted meanwhile: its rows went with it
            attempt = delivery.attempts + 1
            try:
                await self._senders[delivery.target.channel].send(delivery, summary_body(job, delivery))
            except DeliveryFailed as exc:
                await self._failed(delivery, attempt, str(exc))
                return
            self.delivered += 1
            await self._end(delivery, True, attempt, "")
        except WorkmeshError as exc:  # the store: the row stays claimed, and is due again after the hold
            log.warning("notifications: job %s delivery %s: %s", delivery.job_id, delivery.delivery_id, exc)

    async def _failed(self, delivery: Delivery, attempt: int, reason: str) -> None:
        self.failed_attempts += 1
        config = self._config
        now = dt.datetime.now(dt.UTC)
        deadline = delivery.first_at + dt.timedelta(seconds=config.give_up)
        if now >= deadline:
            self.given_up += 1
            log.warning(
                "notifications: gave up on %s for job %s after %d attempts: %s",
                public_address(delivery.target),
                delivery.job_id,
                attempt,
                reason,
            )
            await self._end(delivery, False, attempt, reason)
            return
        delay = min(config.backoff * 2 ** (attempt - 1), config.backoff_max) * random.uniform(0.8, 1.2)
        next_at = min(now + dt.timedelta(seconds=delay), deadline)
        await self._store.retry_delivery(delivery.delivery_id, next_at, reason)

    async def _end(self, delivery: Delivery, delivered: bool, attempts: int, detail: str) -> None:
        outcome = common_pb2.NotificationOutcome(
            channel=delivery.target.channel,
            target=public_address(delivery.target),
            delivered=delivered,
            attempts=attempts,
            detail=detail,
            delivery_id=delivery.delivery_id,
        )
        await self._store.end_delivery(delivery.delivery_id, delivered, common_pb2.JobEvent(notification=outcome))
