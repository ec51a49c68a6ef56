"""Notifications when a job ends: webhooks (signed JSON POST) and e-mail (SMTP), delivered at
least once from the job store's outbox (see ``store/_outbox.py``)."""

from workmesh.services.gateway.notify._channels import SIGNATURE_HEADER, DeliveryFailed, sign
from workmesh.services.gateway.notify._config import NotifyConfig, SmtpConfig
from workmesh.services.gateway.notify._notifier import Notifier, summary_body
from workmesh.services.gateway.notify._targets import check_notify, public_address, request_targets, targets_for

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryFailed",
    "Notifier",
    "NotifyConfig",
    "SmtpConfig",
    "check_notify",
    "public_address",
    "request_targets",
    "sign",
    "summary_body",
    "targets_for",
]
