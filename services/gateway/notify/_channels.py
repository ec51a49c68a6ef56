"""The two delivery channels: a signed webhook POST (aiohttp) and an e-mail over SMTP (smtplib).

Each takes the notification's JSON body and raises :class:`DeliveryFailed` with a short reason
when the attempt did not get through; the notifier decides about retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

import aiohttp

from workmesh.services.core.limits import status_name
from workmesh.services.gateway.notify._config import NotifyConfig, SmtpConfig
from workmesh.services.gateway.store import Delivery

__all__ = ["DeliveryFailed", "EmailSender", "SIGNATURE_HEADER", "Sender", "WebhookSender", "sign"]

SIGNATURE_HEADER = "X-Workmesh-Signature"
DELIVERY_HEADER = "X-Workmesh-Delivery"


class DeliveryFailed(Exception):
    """One attempt did not get through; the message says why (status, connection error, ...)."""


class Sender(Protocol):
    """One channel: what the notifier calls for each attempt, and once when it stops."""

    async def send(self, delivery: Delivery, body: bytes) -> None: ...

    async def close(self) -> None: ...


def sign(secret: str, body: bytes) -> str:
    """The ``X-Workmesh-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """POSTs the body as JSON with its signature and idempotency id; 2xx is delivered."""

    def __init__(self, config: NotifyConfig) -> None:
        self._secret = config.secret
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, delivery: Delivery, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            DELIVERY_HEADER: delivery.delivery_id,
            "Idempotency-Key": delivery.delivery_id,
            "User-Agent": "workmesh-notify",
        }
        try:
            # No redirects: a redirect would re-send the signed body to an address nobody checked.
            async with self._session.post(
                delivery.target.address, data=body, headers=headers, allow_redirects=False
            ) as reply:
                await reply.read()
                if not 200 <= reply.status < 300:
                    raise DeliveryFailed(f"HTTP {reply.status} {reply.reason or ''}".strip())
        except TimeoutError:
            raise DeliveryFailed(f"no answer within {self._timeout.total:g}s") from None
        except aiohttp.ClientError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class EmailSender:
    """Sends a short text mail (the JSON summary attached) through the configured SMTP server."""

    def __init__(self, config: NotifyConfig) -> None:
        self._smtp = config.smtp
        self._timeout = config.timeout

    async def send(self, delivery: Delivery, body: bytes) -> None:
        if self._smtp is None:
            raise DeliveryFailed("no SMTP server is configured (WORKMESH_SMTP_HOST)")
        message = _message(self._smtp.sender, delivery, body)
        try:
            # smtplib blocks: a thread per send keeps the event loop free (mail is rare).
            await asyncio.to_thread(_send, self._smtp, self._timeout, message)
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise DeliveryFailed(f"SMTP {exc.smtp_code} {reply}") from None
        except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        return None


def _message(sender: str, delivery: Delivery, body: bytes) -> EmailMessage:
    summary = json.loads(body)
    job = summary["job"]
    status = status_name(job.get("status", ""))
    message = EmailMessage()
    message["From"] = sender
    message["To"] = delivery.target.address
    message["Subject"] = f"workmesh job {job['jobId']} ({job.get('workflowType', '')}) {status}"
    # The delivery id as Message-ID: a mail sent twice (at least once) is recognisably the same.
    message["Message-ID"] = f"<{delivery.delivery_id}@workmesh>"
    lines = [f"Job {job['jobId']} of type {job.get('workflowType', '')} ended {status}."]
    if job.get("error"):
        lines.append(f"Error: {job['error'].get('code', '')}: {job['error'].get('message', '')}")
    if job.get("finishedAt"):
        lines.append(f"Finished at {job['finishedAt']}.")
    message.set_content("\n".join(lines) + "\n")
    message.add_attachment(body, maintype="application", subtype="json", filename=f"{job['jobId']}.json")
    return message


def _context(smtp: SmtpConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=smtp.ca_file or None)


def _send(smtp: SmtpConfig, timeout: float, message: EmailMessage) -> None:
    if smtp.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=_context(smtp))
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=_context(smtp))  # raises SMTPNotSupportedError if not offered
        if smtp.username:
            client.login(smtp.username, smtp.password)
        client.send_message(message)
