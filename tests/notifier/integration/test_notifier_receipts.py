"""Delivery receipts (the use case behind the GOV.UK Notify callback) against PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from services.notifier.adapters.notify import parse_delivery_receipt
from tests.notifier.helpers import FakeChannel, contacts_event, deadline_event, notification_rows
from tests.notifier.integration.conftest import CASEWORKER

pytestmark = pytest.mark.infra
CASE = "case-r1"


def receipt(notification_id: str, status: str, provider_id: str = "notify-id-1") -> object:
    return parse_delivery_receipt({"id": provider_id, "reference": notification_id, "to": "+447700900111",
                                   "status": status, "notification_type": "sms"})


async def sent_family_text(built) -> object:
    await built.service.handle_contacts([(CASE, contacts_event(CASE, {"phone": "07700900111", "channel": "sms",
                                                                      "consent": True}))])
    await built.service.handle_deadline_events([deadline_event("deadline.opened", CASE, due_on=date(2026, 4, 21))])
    await built.service.send_due()
    [row] = await notification_rows(built.sessions, recipient_kind="family")
    assert row.status == "sent"
    return row


async def test_delivered_settles_the_notification(make_notifier) -> None:
    built = await make_notifier()
    row = await sent_family_text(built)
    result = await built.service.handle_delivery_receipt(receipt(row.notification_id, "delivered"))
    assert (result.outcome, result.status) == ("updated", "delivered")
    again = await built.service.handle_delivery_receipt(receipt(row.notification_id, "delivered"))
    assert again.outcome == "unchanged"
    late = await built.service.handle_delivery_receipt(receipt(row.notification_id, "temporary-failure"))
    assert late.outcome == "unchanged"  # never backwards from a settled status
    [row] = await notification_rows(built.sessions, recipient_kind="family")
    assert row.status == "delivered"
    assert [e["status"] for e in await built.audit()][-1] == "delivered"


async def test_a_receipt_is_matched_by_the_providers_id_too(make_notifier) -> None:
    built = await make_notifier()
    row = await sent_family_text(built)
    result = await built.service.handle_delivery_receipt(
        parse_delivery_receipt({"id": row.provider_reference, "status": "delivered"}))
    assert result.notification_id == row.notification_id and result.status == "delivered"
    unknown = await built.service.handle_delivery_receipt(parse_delivery_receipt({"id": "nope", "status": "delivered"}))
    assert unknown.outcome == "unknown"


async def test_permanent_failure_alerts_the_caseworker(make_notifier) -> None:
    built = await make_notifier()
    row = await sent_family_text(built)
    result = await built.service.handle_delivery_receipt(receipt(row.notification_id, "permanent-failure"))
    assert result.status == "permanent-failure"
    await built.service.send_due()
    [alert] = built.email.to(CASEWORKER[1])
    assert "permanent-failure" in alert.body and "7700" not in alert.body


async def test_temporary_failure_is_sent_again_until_no_attempt_is_left(make_notifier) -> None:
    built = await make_notifier()  # three attempts at most
    row = await sent_family_text(built)
    for attempt in (1, 2):
        result = await built.service.handle_delivery_receipt(receipt(row.notification_id, "temporary-failure"))
        assert result.status == "temporary-failure"
        built.clock.advance(seconds=61)
        await built.service.send_due()
        assert len(built.sms.sent) == attempt + 1
    result = await built.service.handle_delivery_receipt(receipt(row.notification_id, "temporary-failure"))
    assert result.status == "failed"
    await built.service.send_due()
    assert len(built.email.to(CASEWORKER[1])) == 1


async def test_technical_failure_is_deferred_and_sent_again(make_notifier) -> None:
    built = await make_notifier()
    row = await sent_family_text(built)
    result = await built.service.handle_delivery_receipt(receipt(row.notification_id, "technical-failure"))
    assert result.status == "deferred"
    built.clock.advance(seconds=61)
    await built.service.send_due()
    assert len(built.sms.sent) == 2
    statuses = [e["status"] for e in await built.audit() if e["recipient_kind"] == "family"]
    assert statuses[-4:] == ["technical-failure", "deferred", "sending", "sent"]


async def test_a_receipt_that_overtakes_the_send_result_is_kept(make_notifier) -> None:
    built = await make_notifier()

    class ReceiptFirst(FakeChannel):
        async def send(self, msg):  # type: ignore[no-untyped-def]
            result = await super().send(msg)
            # Notify's callback arrives before our own transaction records "sent"
            await built.service.handle_delivery_receipt(receipt(msg.notification_id, "delivered", "early"))
            return result

    channel = ReceiptFirst()
    built.service.sender._channels = {**built.service.sender._channels, "notify_sms": channel}
    await built.service.handle_contacts([(CASE, contacts_event(CASE, {"phone": "07700900111", "channel": "sms",
                                                                      "consent": True}))])
    await built.service.handle_deadline_events([deadline_event("deadline.opened", CASE, due_on=date(2026, 4, 21))])
    await built.service.send_due()
    [row] = await notification_rows(built.sessions, recipient_kind="family")
    assert row.status == "delivered"
    assert [e["status"] for e in await built.audit()] == ["pending", "sending", "delivered"]
