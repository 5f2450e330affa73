"""The sender against PostgreSQL: consent, quiet hours, rate limits, retries, final failures and
the caseworker's alert, exactly-once planning, stuck rows. Time is a FakeClock, never wall time."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import update

from services.notifier.adapters import tables
from services.notifier.adapters.channels import PermanentSendError, RetryableSendError
from tests.notifier.helpers import FakeClock, contacts_event, deadline_event, london, notification_rows
from tests.notifier.integration.conftest import CASEWORKER

pytestmark = pytest.mark.infra

CASE = "case-77"
PARENT_MOBILE = "07700 900111"
PARENT_E164 = "+447700900111"
OTHER_MOBILE = "07700 900222"
PARENT_EMAIL = "alex.parent@example.org"
DUE = date(2026, 4, 21)


def parent(**changes: object) -> dict[str, object]:
    contact: dict[str, object] = {"role": "parent", "name": "Alex Morgan", "phone": PARENT_MOBILE, "channel": "sms",
                                  "consent": True}
    contact.update(changes)
    return contact


async def request_received(built, case_id: str = CASE, **contacts: dict[str, object]) -> int:
    await built.service.handle_contacts([(case_id, contacts_event(case_id, *contacts.values()))])
    return await built.service.handle_deadline_events([deadline_event("deadline.opened", case_id, due_on=DUE)])


async def test_a_family_text_in_quiet_hours_waits_for_the_morning(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 21, 0)))
    assert await request_received(built, a=parent()) == 1
    [row] = await notification_rows(built.sessions, recipient_kind="family")
    assert row.status == "deferred"
    assert row.next_attempt_at == london(2026, 3, 11, 8, 0)

    assert await built.service.send_due() == 0
    built.clock.set(london(2026, 3, 11, 7, 59))
    assert await built.service.send_due() == 0
    assert built.sms.sent == []

    built.clock.set(london(2026, 3, 11, 8, 0))
    assert await built.service.send_due() == 1
    [text] = built.sms.sent
    assert text.to == PARENT_E164 and text.template == "family_request_received"
    assert [e["status"] for e in await built.audit()] == ["pending", "deferred", "sending", "sent"]


async def test_a_retry_that_falls_in_quiet_hours_is_deferred_again(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 19, 59, )))
    built.sms.errors.append(RetryableSendError("GOV.UK Notify answered 500"))
    await request_received(built, a=parent())
    await built.service.send_due()
    built.clock.advance(minutes=5)  # 20:04: the retry is due, but it is quiet hours now
    await built.service.send_due()
    [row] = await notification_rows(built.sessions, recipient_kind="family")
    assert (row.status, row.next_attempt_at, row.attempts) == ("deferred", london(2026, 3, 11, 8, 0), 1)
    assert built.sms.attempts == 1


async def test_only_family_members_who_consented_hear_in_their_channel_and_language(make_notifier) -> None:
    built = await make_notifier()
    planned = await request_received(
        built, a=parent(), same_number_again=parent(name="Alex M", phone="+44 7700 900111"),
        no_consent=parent(phone=OTHER_MOBILE, consent=False),
        said_none=parent(phone="07700 900333", channel="none"),
        welsh=parent(phone=None, email=PARENT_EMAIL, channel="email", language="cy"))
    assert planned == 2
    while await built.service.send_due():
        pass
    assert [m.to for m in built.sms.sent] == [PARENT_E164]
    [email] = built.email.to(PARENT_EMAIL)
    assert email.language == "cy" and "Helo" in email.body
    for message in [*built.sms.sent, email]:
        assert "Alex" not in message.body and CASE not in message.body  # no name, no case reference


async def test_consent_withdrawn_before_sending_stops_the_text(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 22, 0)))
    await request_received(built, a=parent())
    await built.service.handle_contacts([(CASE, contacts_event(CASE, parent(consent=False)))])
    built.clock.set(london(2026, 3, 11, 9, 0))
    await built.service.send_due()
    [row] = await notification_rows(built.sessions, recipient_kind="family")
    assert row.status == "failed" and row.last_error == "no consent"
    assert built.sms.sent == [] and built.email.sent == []  # and the caseworker is not alerted: it was meant


async def test_erased_contacts_stop_the_text(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 22, 0)))
    await request_received(built, a=parent())
    await built.service.handle_contacts([(CASE, None)])  # a tombstone on ehc.contacts
    built.clock.set(london(2026, 3, 11, 9, 0))
    await built.service.send_due()
    assert [r.status for r in await notification_rows(built.sessions)] == ["failed"]
    assert built.sms.sent == []


async def test_network_errors_5xx_and_429_are_retried_with_capped_backoff(make_notifier) -> None:
    built = await make_notifier()
    built.sms.errors.extend([RetryableSendError("GOV.UK Notify answered 429", retry_after=30.0),
                             RetryableSendError("GOV.UK Notify answered 500")])
    await request_received(built, a=parent())
    start = built.clock()
    await built.service.send_due()
    [row] = await notification_rows(built.sessions)
    assert row.status == "temporary-failure" and row.attempts == 1
    assert row.next_attempt_at == start + timedelta(seconds=30)  # Retry-After honoured (within the cap)
    assert await built.service.send_due() == 0  # not before its time
    built.clock.advance(seconds=30)
    await built.service.send_due()
    [row] = await notification_rows(built.sessions)
    assert row.status == "temporary-failure" and row.attempts == 2
    assert start + timedelta(seconds=40) <= row.next_attempt_at <= start + timedelta(seconds=50)  # 10 s, jittered
    built.clock.advance(seconds=60)
    await built.service.send_due()
    [row] = await notification_rows(built.sessions)
    assert (row.status, row.attempts, built.sms.attempts, len(built.sms.sent)) == ("sent", 3, 3, 1)
    statuses = [e["status"] for e in await built.audit()]
    assert statuses == ["pending", "sending", "temporary-failure", "sending", "temporary-failure", "sending", "sent"]


async def test_a_permanent_error_is_final_and_the_caseworker_is_told_without_the_address(make_notifier) -> None:
    built = await make_notifier()
    built.sms.errors.append(PermanentSendError(
        f"GOV.UK Notify answered 400 (ValidationError: phone_number {PARENT_E164} is not allowed)"))
    await request_received(built, a=parent())
    await built.service.send_due()
    [family] = await notification_rows(built.sessions, recipient_kind="family")
    assert (family.status, family.attempts, built.sms.attempts) == ("failed", 1, 1)
    assert PARENT_E164 not in family.last_error
    await built.service.send_due()
    [alert] = built.email.to(CASEWORKER[1])
    assert alert.template == "caseworker_delivery_failed"
    assert CASE in alert.subject and "text message" in alert.body and "400" in alert.body
    for secret in (PARENT_E164, "7700900111", "7700 900111", "Alex"):
        assert secret not in alert.body + alert.subject
    # the failure and the alert are in the audit trail, without the number
    audit = await built.audit()
    assert {(e["recipient_kind"], e["status"]) for e in audit} >= {("family", "failed"), ("caseworker", "sent")}
    assert all("7700" not in (e.get("error") or "") for e in audit)


async def test_the_last_retry_failing_is_final_and_alerts_once(make_notifier) -> None:
    built = await make_notifier()
    built.sms.errors.extend([RetryableSendError("could not reach GOV.UK Notify (ConnectError)")] * 3)
    await request_received(built, a=parent())
    for _ in range(3):
        await built.service.send_due()
        built.clock.advance(seconds=61)
    await built.service.send_due()
    rows = await notification_rows(built.sessions)
    family = next(r for r in rows if r.recipient_kind == "family")
    assert (family.status, family.attempts) == ("failed", 3)
    assert [r.template for r in rows if r.recipient_kind == "caseworker"] == ["caseworker_delivery_failed"]
    assert len(built.email.to(CASEWORKER[1])) == 1


async def test_a_number_that_cannot_take_texts_fails_at_once_and_alerts(make_notifier) -> None:
    built = await make_notifier()
    await request_received(built, a=parent(phone="020 7946 0000"))  # a London landline
    [family] = await notification_rows(built.sessions, recipient_kind="family")
    assert family.status == "failed" and "landline" in family.last_error
    await built.service.send_due()
    assert built.sms.sent == []
    [alert] = built.email.to(CASEWORKER[1])
    assert "landline" in alert.body and "7946" not in alert.body


async def test_rate_limits_keep_the_status_and_set_the_next_attempt(make_notifier) -> None:
    built = await make_notifier(texts_per_number_per_hour=1)
    await built.service.handle_contacts([(CASE, contacts_event(CASE, parent()))])
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", CASE, due_on=DUE),
        deadline_event("deadline.opened", CASE, "draft.representations", due_on=DUE, responsible="family")])
    now = built.clock()
    assert await built.service.send_due() == 1  # the first text (the second, to the same family, waits its turn)
    assert await built.service.send_due() == 1  # the second: the limit says wait
    assert len(built.sms.sent) == 1
    [waiting] = [r for r in await notification_rows(built.sessions) if r.status != "sent"]
    assert waiting.status == "pending" and waiting.attempts == 0
    assert waiting.next_attempt_at == now + timedelta(hours=1)  # one text per number an hour
    built.clock.advance(hours=1)
    assert await built.service.send_due() == 1
    assert len(built.sms.sent) == 2


async def test_gov_uk_notify_rate_limit_applies_to_its_channel(make_notifier) -> None:
    built = await make_notifier(email_channel="notify", notify_rate_per_minute=60, notify_rate_burst=2)
    events = [deadline_event("deadline.breached", f"case-{i}", due_on=date(2026, 3, 9)) for i in range(3)]
    await built.service.handle_deadline_events(events)
    now = built.clock()
    await built.service.send_due()
    assert len(built.email.sent) == 2
    [waiting] = [r for r in await notification_rows(built.sessions) if r.status == "pending"]
    assert waiting.next_attempt_at == now + timedelta(seconds=1)  # 60 a minute: one a second


async def test_redelivered_events_plan_nothing_twice(make_notifier) -> None:
    built = await make_notifier()
    await built.service.handle_contacts([(CASE, contacts_event(CASE, parent()))])
    event = deadline_event("deadline.breached", CASE, due_on=date(2026, 3, 9))
    assert await built.service.handle_deadline_events([event]) == 2  # caseworker and family
    assert await built.service.handle_deadline_events([event]) == 0  # the same event again
    again = event.model_copy(update={"id": "a-new-id-for-the-same-breach"})
    assert await built.service.handle_deadline_events([again]) == 0  # the idempotency key holds
    while await built.service.send_due():
        pass
    assert len(built.sms.sent) == 1 and len(built.email.to(CASEWORKER[1])) == 1


async def test_rows_left_sending_by_a_crash_are_not_sent_again(make_notifier) -> None:
    built = await make_notifier()
    await request_received(built, a=parent())
    n = tables.notifications
    async with built.sessions() as session, session.begin():
        await session.execute(update(n).values(status="sending", attempts=1,
                                               updated_at=built.clock() - timedelta(minutes=11)))
    assert await built.service.sweep_stuck() == 1
    [family] = await notification_rows(built.sessions, recipient_kind="family")
    assert family.status == "technical-failure"
    await built.service.send_due()
    assert built.sms.sent == []
    [alert] = built.email.to(CASEWORKER[1])
    assert "interrupted" in alert.body
