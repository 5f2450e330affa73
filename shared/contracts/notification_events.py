"""Audit trail on ``ehc.notification-events``: every attempt and status change of a notification."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contracts.envelope import Contract, Envelope

NotificationStatus = Literal[
    "pending", "deferred", "sending", "sent", "delivered", "temporary-failure", "permanent-failure",
    "technical-failure", "failed", "historical",
]


class NotificationData(Contract):
    notification_id: str
    case_id: str | None = None
    deadline_id: str | None = None
    kind: str = Field(description="reminder, breach, milestone, digest, failure_alert, ...")
    recipient_kind: Literal["caseworker", "family", "manager"]
    recipient_ref: str = Field(description="A pseudonymous reference to the recipient, never an address.")
    channel: Literal["notify_sms", "notify_email", "smtp", "sms_gateway", "file"]
    status: NotificationStatus
    attempt: int = 0
    error: str | None = None
    provider_reference: str | None = None


class NotificationEvent(Envelope):
    type: Literal["notification.status_changed"] = "notification.status_changed"
    data: NotificationData
