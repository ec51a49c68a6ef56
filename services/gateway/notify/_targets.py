"""Notification targets: the ``notify`` field of SubmitJob checked, and the tenant defaults.

Checked before anything is stored: a malformed URL or address is INVALID_ARGUMENT naming the
field (``notify.webhooks[0]``) and the rule, so a job never waits to end only for its
notification to fail on a typo.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping

from workmesh.services.core.errors import FailedPrecondition, InvalidArgument
from workmesh.services.gateway.store import NotifyTarget
from workmesh.v1 import common_pb2

__all__ = ["MAX_TARGETS", "check_notify", "public_address", "request_targets", "targets_for"]

MAX_TARGETS = 10  # per channel and job
MAX_URL_LENGTH = 2048
MAX_EMAIL_LENGTH = 254  # RFC 5321's path limit
# A pragmatic address check: one @, a local part without spaces or control characters, a
# domain of dot-separated labels (or a bracketed IP literal). SMTP servers judge the rest.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _check_url(url: str, field: str) -> str:
    if not url:
        raise InvalidArgument(field, "must not be empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(field, f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidArgument(field, "must not contain whitespace or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(field, f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument(field, "must be an http:// or https:// URL")
    if not parts.hostname:
        raise InvalidArgument(field, "must name a host")
    if port == 0:
        raise InvalidArgument(field, "port must be 1-65535")
    if parts.fragment:
        raise InvalidArgument(field, "must not have a #fragment (it is never sent)")
    return url


def _check_domain(domain: str) -> bool:
    if domain.startswith("[") and domain.endswith("]"):
        try:
            ipaddress.ip_address(domain[1:-1].removeprefix("IPv6:"))
            return True
        except ValueError:
            return False
    labels = domain.split(".")
    return len(domain) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _check_email(address: str, field: str) -> str:
    if not address:
        raise InvalidArgument(field, "must not be empty")
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidArgument(field, f"must be at most {MAX_EMAIL_LENGTH} characters")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidArgument(field, "must be an e-mail address local@domain")
    if not _LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidArgument(
            field,
            "the part before @ must be 1-64 letters, digits or !#$%&'*+/=?^_`{|}~.- "
            "(no leading, trailing or double dot)",
        )
    if not _check_domain(domain):
        raise InvalidArgument(
            field, "the domain must be dot-separated labels of letters, digits and hyphens (or a bracketed IP address)"
        )
    return address


def check_notify(
    notify: common_pb2.Notify, *, webhooks_enabled: bool = True, email_enabled: bool = True
) -> tuple[NotifyTarget, ...]:
    """The targets of a SubmitJob ``notify`` field, checked; duplicates dropped, order kept.

    Args:
        notify: the request's field.
        webhooks_enabled: the gateway can sign webhooks (a secret is configured).
        email_enabled: the gateway has an SMTP server configured.

    Raises:
        InvalidArgument: a malformed URL or address, or too many; the message names the field.
        FailedPrecondition: a channel this gateway is not configured for.
    """
    for name, values in (("webhooks", notify.webhooks), ("emails", notify.emails)):
        if len(values) > MAX_TARGETS:
            raise InvalidArgument(f"notify.{name}", f"at most {MAX_TARGETS} per job")
    targets: dict[NotifyTarget, None] = {}
    for i, url in enumerate(notify.webhooks):
        targets[NotifyTarget("webhook", _check_url(url, f"notify.webhooks[{i}]"))] = None
    for i, address in enumerate(notify.emails):
        targets[NotifyTarget("email", _check_email(address, f"notify.emails[{i}]"))] = None
    if notify.webhooks and not webhooks_enabled:
        raise FailedPrecondition("notify.webhooks: this gateway has no WORKMESH_NOTIFY_SECRET to sign webhooks with")
    if notify.emails and not email_enabled:
        raise FailedPrecondition("notify.emails: this gateway has no SMTP server configured (WORKMESH_SMTP_HOST)")
    return tuple(targets)


def targets_for(
    requested: tuple[NotifyTarget, ...], asked: bool, tenant: str, defaults: Mapping[str, tuple[NotifyTarget, ...]]
) -> tuple[NotifyTarget, ...]:
    """What a job notifies: its own ``notify`` when the request set it (even empty: none),
    else its tenant's defaults (the default tenant is ``""``)."""
    if asked:
        return requested
    return defaults.get(tenant, ())


def public_address(target: NotifyTarget) -> str:
    """The target as job events show it: a webhook as scheme://host[:port] only, because its path
    and query often carry a secret token (Slack, Teams); an e-mail address as it is."""
    if target.channel != "webhook":
        return target.address
    parts = urllib.parse.urlsplit(target.address)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def request_targets(request, config, tenant: str) -> tuple[NotifyTarget, ...]:
    """The targets a SubmitJobRequest of `tenant` (the job's owner) gets under a NotifyConfig
    (None: no notifications configured): its own ``notify``, checked, or the tenant's defaults.

    Raises:
        InvalidArgument, FailedPrecondition: see :func:`check_notify`.
    """
    asked = request.HasField("notify")
    if config is None:
        if asked and (request.notify.webhooks or request.notify.emails):
            check_notify(request.notify, webhooks_enabled=False, email_enabled=False)
        return ()
    requested = (
        check_notify(request.notify, webhooks_enabled=bool(config.secret), email_enabled=config.smtp is not None)
        if asked
        else ()
    )
    return targets_for(requested, asked, tenant, config.defaults)
