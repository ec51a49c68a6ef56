"""NotifyConfig: how the gateway delivers job-end notifications, read from the environment once."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workmesh.services.core import env as envvars
from workmesh.services.core.errors import WorkmeshError
from workmesh.services.gateway.notify._targets import check_notify
from workmesh.services.gateway.store import NotifyTarget
from workmesh.v1 import common_pb2

__all__ = ["NotifyConfig", "SmtpConfig"]

SECURITY = ("starttls", "tls", "none")
_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True)
class SmtpConfig:
    """The SMTP server e-mail notifications go through.

    Attributes:
        host, port: the server (``WORKMESH_SMTP_HOST``, ``WORKMESH_SMTP_PORT``; the port defaults
            to 587 for STARTTLS, 465 for TLS, 25 for none).
        security: ``starttls`` (default: plain connect, then STARTTLS, refused if the server does
            not offer it), ``tls`` (TLS from the first byte) or ``none`` (``WORKMESH_SMTP_SECURITY``).
        username, password: AUTH credentials (``WORKMESH_SMTP_USERNAME``/``_PASSWORD``); none: no AUTH.
        sender: the From address (``WORKMESH_SMTP_FROM``, default ``workmesh@<hostname>``).
        ca_file: a PEM file of CAs to verify the server with instead of the system's
            (``WORKMESH_SMTP_CA_FILE``; a private mail relay).
    """

    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""
    ca_file: str = ""


@dataclass(frozen=True)
class NotifyConfig:
    """Notification delivery settings.

    Attributes:
        secret: the HMAC-SHA256 key webhooks are signed with (``WORKMESH_NOTIFY_SECRET``); empty:
            jobs cannot ask for webhooks (FAILED_PRECONDITION at submit).
        defaults: per tenant, the targets of jobs that do not set ``notify``
            (``WORKMESH_NOTIFY_DEFAULTS``: JSON, or ``@path`` to a JSON file:
            ``{"tenant": {"webhooks": [...], "emails": [...]}}``; ``""`` is the default tenant).
        smtp: the SMTP server; None: jobs cannot ask for e-mail.
        timeout: seconds one delivery attempt may take (``WORKMESH_NOTIFY_TIMEOUT``, 10 s).
        backoff: seconds before the first retry, doubled per failed attempt up to
            ``backoff_max`` (``WORKMESH_NOTIFY_BACKOFF``, 1 s; ``WORKMESH_NOTIFY_BACKOFF_MAX``, 5 min).
        give_up: seconds after the first attempt when a target still failing is given up on and
            that is recorded in the job's events (``WORKMESH_NOTIFY_GIVE_UP``, 24 h).
        poll: seconds between looks for due notifications (``WORKMESH_NOTIFY_POLL``, 1 s): the
            bound on the delay after a job ends, and how soon another replica's work is seen.
        concurrency: deliveries at once.
    """

    secret: str = field(default="", repr=False)
    defaults: Mapping[str, tuple[NotifyTarget, ...]] = field(default_factory=dict)
    smtp: SmtpConfig | None = None
    timeout: float = 10.0
    backoff: float = 1.0
    backoff_max: float = 300.0
    give_up: float = 86400.0
    poll: float = 1.0
    concurrency: int = 16

    @property
    def enabled(self) -> bool:
        """Whether any job can be notified (a channel is configured)."""
        return bool(self.secret) or self.smtp is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifyConfig:
        """Read ``WORKMESH_NOTIFY_*`` and ``WORKMESH_SMTP_*`` (see the attributes).

        Raises:
            ValueError: a variable is malformed; the message names it.
        """
        env = os.environ if env is None else env
        smtp = None
        host = env.get("WORKMESH_SMTP_HOST", "").strip()
        if host:
            security = envvars.choice(env, "WORKMESH_SMTP_SECURITY", "starttls", SECURITY)
            port = envvars.integer(env, "WORKMESH_SMTP_PORT", _DEFAULT_PORTS[security], minimum=1, maximum=65535)
            ca_file = env.get("WORKMESH_SMTP_CA_FILE", "").strip()
            if ca_file and not Path(ca_file).is_file():
                raise ValueError(f"WORKMESH_SMTP_CA_FILE={ca_file!r}: no such file")
            smtp = SmtpConfig(
                host=host,
                port=port,
                security=security,
                username=env.get("WORKMESH_SMTP_USERNAME", "").strip(),
                password=env.get("WORKMESH_SMTP_PASSWORD", ""),
                sender=env.get("WORKMESH_SMTP_FROM", "").strip() or f"workmesh@{socket.getfqdn()}",
                ca_file=ca_file,
            )
        config = cls(
            secret=env.get("WORKMESH_NOTIFY_SECRET", ""),
            smtp=smtp,
            timeout=_seconds(env, "WORKMESH_NOTIFY_TIMEOUT", cls.timeout),
            backoff=_seconds(env, "WORKMESH_NOTIFY_BACKOFF", cls.backoff),
            backoff_max=_seconds(env, "WORKMESH_NOTIFY_BACKOFF_MAX", cls.backoff_max),
            give_up=_seconds(env, "WORKMESH_NOTIFY_GIVE_UP", cls.give_up),
            poll=_seconds(env, "WORKMESH_NOTIFY_POLL", cls.poll),
        )
        raw = env.get("WORKMESH_NOTIFY_DEFAULTS", "").strip()
        if raw:
            return _with_defaults(config, raw)
        return config


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    return envvars.seconds(env, name, default, above=0, maximum=366 * 86400)


def _with_defaults(config: NotifyConfig, raw: str) -> NotifyConfig:
    """`config` with the tenant defaults of ``WORKMESH_NOTIFY_DEFAULTS`` (JSON or ``@file``),
    each checked like a job's own ``notify``."""
    name = "WORKMESH_NOTIFY_DEFAULTS"
    try:
        text = Path(raw[1:]).read_text() if raw.startswith("@") else raw
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f'{name}: must be a JSON object of tenant -> {{"webhooks": [...], "emails": [...]}}')
    defaults: dict[str, tuple[NotifyTarget, ...]] = {}
    for tenant, spec in data.items():
        if (
            not isinstance(spec, dict)
            or set(spec) - {"webhooks", "emails"}
            or not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in spec.values())
        ):
            raise ValueError(f'{name}: tenant {tenant!r}: must be {{"webhooks": [URL, ...], "emails": [address, ...]}}')
        try:
            defaults[tenant] = check_notify(
                common_pb2.Notify(**spec), webhooks_enabled=bool(config.secret), email_enabled=config.smtp is not None
            )
        except WorkmeshError as exc:
            raise ValueError(f"{name}: tenant {tenant!r}: {exc.message}") from None
    return NotifyConfig(**{**config.__dict__, "defaults": defaults})
