"""Delivery receipts (GOV.UK Notify callbacks): the provider's word on what happened to a message.

A receipt names our notification (``reference``) and Notify's id. Under the row lock the status
moves by a guarded transition, and the change is audited:

* ``delivered``: settled;
* ``permanent-failure`` (wrong number or address): settled, and the caseworker is told;
* ``temporary-failure`` (phone off, inbox full) and ``technical-failure`` (Notify's own problem):
  Notify says the message may be sent again, so it gets another attempt after the retry policy's
  backoff, until no attempt is left; then ``failed`` and the caseworker is told;
* a receipt that would move a settled notification backwards (a repeat, or out of order) changes
  nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import or_, select, update

from services.notifier.adapters import tables
from services.notifier.adapters.channels import RetryableSendError
from services.notifier.adapters.notify import DeliveryReceipt
from services.notifier.domain.policy import InvalidStatusTransition, NotificationStatus, transition
from services.notifier.service_layer.notifications import (
    AuditEntry,
    Deps,
    alert_caseworker_of_failure,
    audit,
    is_postgres,
)
from shared.logging import get_logger

log = get_logger(__name__)
S = NotificationStatus
ReceiptOutcome = Literal["updated", "unchanged", "unknown"]


@dataclass(frozen=True)
class ReceiptResult:
    outcome: ReceiptOutcome
    notification_id: str | None = None
    status: str | None = None


async def handle_delivery_receipt(deps: Deps, receipt: DeliveryReceipt) -> ReceiptResult:
    n = tables.notifications
    now = deps.clock()
    async with deps.sessions() as session, session.begin():
        match = n.c.provider_reference == receipt.provider_reference
        if receipt.reference:
            match = or_(n.c.notification_id == receipt.reference, match)
        q = select(n).where(match).limit(1)
        if is_postgres(session):
            q = q.with_for_update()
        row = (await session.execute(q)).first()
        if row is None:
            log.warning("notifier.receipt_for_unknown_notification", provider_reference=receipt.provider_reference)
            return ReceiptResult("unknown")
        try:
            status = transition(row.status, receipt.status)
        except InvalidStatusTransition:
            log.info("notifier.receipt_ignored", notification_id=row.notification_id, status=row.status,
                     receipt_status=receipt.provider_status)
            return ReceiptResult("unchanged", row.notification_id, row.status)
        if status == row.status:  # a repeated receipt
            return ReceiptResult("unchanged", row.notification_id, row.status)
        values: dict[str, object] = {"status": str(status), "updated_at": now,
                                     "provider_reference": row.provider_reference or receipt.provider_reference}
        entries = [AuditEntry(row, str(status), row.attempts, _receipt_error(receipt), receipt.provider_reference)]
        alert = status is S.PERMANENT_FAILURE
        if status in (S.TEMPORARY_FAILURE, S.TECHNICAL_FAILURE):
            reason = f"GOV.UK Notify reported {receipt.provider_status}"
            retry_at = deps.retry.next_attempt_at(row.attempts, RetryableSendError(reason), now)
            if retry_at is None:
                status = transition(status, S.FAILED)
                entries.append(AuditEntry(row, str(status), row.attempts, reason, receipt.provider_reference))
                alert = True
            elif status is S.TECHNICAL_FAILURE:  # only a deferred row is claimed again (see sending)
                status = transition(status, S.DEFERRED)
                entries.append(AuditEntry(row, str(status), row.attempts, reason, receipt.provider_reference))
            values.update(status=str(status), next_attempt_at=retry_at or now, last_error=reason)
        elif alert:
            values["last_error"] = f"GOV.UK Notify reported {receipt.provider_status}"
        await session.execute(update(n).where(n.c.notification_id == row.notification_id).values(**values))
        await audit(session, deps, entries)
        if alert:
            await alert_caseworker_of_failure(session, deps, row, str(values.get("last_error", "")), None)
    log.info("notifier.receipt", notification_id=row.notification_id, status=str(status),
             provider_status=receipt.provider_status)
    if status in (S.TEMPORARY_FAILURE, S.DEFERRED):
        deps.wakeup.set()
    return ReceiptResult("updated", row.notification_id, str(status))


def _receipt_error(receipt: DeliveryReceipt) -> str | None:
    if receipt.status in (S.PERMANENT_FAILURE, S.TEMPORARY_FAILURE, S.TECHNICAL_FAILURE):
        return f"GOV.UK Notify reported {receipt.provider_status}"
    return None


__all__ = ["ReceiptResult", "handle_delivery_receipt"]
