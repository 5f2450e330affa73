"""Issue 6 acceptance, end to end: deadline events and contacts through real Kafka, notifications in
PostgreSQL, emails through a real SMTP server (aiosmtpd) and texts through the GOV.UK Notify
stand-in, delivery receipts POSTed back over HTTP. Every test also checks, through
``captured_logs``, that no personal detail of its data reached a log line."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.notifier.adapters import tables
from services.notifier.bootstrap import Notifier, bootstrap
from tests.conftest import Mailbox, body_text, eventually
from tests.e2e.harness import running
from tests.notifier.e2e.conftest import (
    ADMIN_TOKEN,
    CALLBACK_TOKEN,
    CARER_MOBILE,
    CARER_NAME,
    CASEWORKER,
    MANAGER_AREA,
    MANAGER_TEAM,
    PARENT_EMAIL,
    PARENT_MOBILE,
    PARENT_NAME,
    SECOND_MOBILE,
    assert_no_personal_data_stored_in_clear,
    audit_events,
    e2e_settings,
    personal_data_in,
    publish,
    rows,
)
from tests.notifier.helpers import FakeClock, contacts_event, deadline_event, london, serve_http
from tests.notifier.notify_stub import NotifyStub

pytestmark = pytest.mark.infra


def parent_by(channel: str, **changes: Any) -> dict[str, Any]:
    contact = {"role": "parent", "name": PARENT_NAME, "phone": PARENT_MOBILE, "email": PARENT_EMAIL,
               "channel": channel, "consent": True}
    contact.update(changes)
    return contact


def subject(message: Any) -> str:
    return " ".join(str(message["Subject"]).split())  # unfold the header


CARER_WITHOUT_CONSENT = {"role": "carer", "name": CARER_NAME, "phone": CARER_MOBILE, "channel": "sms",
                         "consent": False}


async def contacts_stored(notifier: Notifier, *case_ids: str) -> None:
    async def stored() -> bool:
        async with notifier.sessions() as session:
            c = tables.contacts
            return await session.scalar(select(func.count()).select_from(c).where(c.c.case_id.in_(case_ids))) \
                == len(case_ids)

    await eventually(stored, 30, "the contacts stored (encrypted)")


async def test_a_breach_reaches_the_manager_and_the_caseworker_by_email(
    isolated, smtp_server: Mailbox, notify: NotifyStub, notify_url: str, producer, captured_logs, tmp_path,
) -> None:
    subscriptions = tmp_path / "subscriptions.yaml"  # loaded at start
    subscriptions.write_text("subscriptions:\n"
                             f"  - {{manager: mgr-north, scope: team, scope_id: team-n, kind: breach, "
                             f"address: {MANAGER_TEAM}}}\n")
    settings = e2e_settings(isolated, smtp_server, notify, notify_url, subscriptions_file=subscriptions,
                            sendiass_contact="Herts SENDIASS 01992 555847")
    notifier = bootstrap(settings, clock=FakeClock(london(2026, 3, 10, 9, 5)))  # in working hours
    case = "case-breach"
    async with running(notifier):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=notifier.api), base_url="http://n") as api:
            created = await api.post("/v1/subscriptions", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                     json={"manager_ref": "mgr-west", "scope": "area", "scope_id": "area-w",
                                           "kind": "breach", "address": MANAGER_AREA})
            assert created.status_code == 201
        await publish(producer, settings, contacts_event(case, parent_by("email"), CARER_WITHOUT_CONSENT))
        await contacts_stored(notifier, case)
        await publish(producer, settings, deadline_event("deadline.breached", case, "plan.final",
                                                         due_on=date(2026, 3, 9), team_id="team-n", area_id="area-w"))

        async def everyone_told() -> bool:
            return all(smtp_server.to(a) for a in (CASEWORKER[1], MANAGER_TEAM, MANAGER_AREA, PARENT_EMAIL))

        await eventually(everyone_told, 30, "the caseworker, both managers and the family emailed")
        audit = await audit_events(settings, lambda es: sum(e["data"]["status"] == "sent" for e in es) >= 4)
        await assert_no_personal_data_stored_in_clear(notifier, audit)

    [to_caseworker] = smtp_server.to(CASEWORKER[1])
    assert subject(to_caseworker) == f"Deadline missed: Issue the final EHC plan (20 weeks), case {case}"
    [to_manager] = smtp_server.to(MANAGER_TEAM)
    assert "team team-n" in subject(to_manager) and case in subject(to_manager)
    assert "area area-w" in subject(smtp_server.to(MANAGER_AREA)[0])
    family = body_text(smtp_server.to(PARENT_EMAIL)[0])
    assert "has not met the legal deadline to issue the final EHC plan" in family
    assert "Herts SENDIASS 01992 555847" in family and "0300 123 4043" in family
    assert notify.received == []  # the carer gave no consent; the parent asked for email
    assert len(smtp_server.messages) == 4
    statuses = {(e["data"]["recipient_kind"], e["data"]["status"]) for e in audit}
    assert statuses >= {("caseworker", "sent"), ("manager", "sent"), ("family", "sent")}


async def test_a_family_text_goes_only_with_consent_and_never_in_quiet_hours(
    isolated, smtp_server: Mailbox, notify: NotifyStub, notify_url: str, producer, captured_logs,
) -> None:
    clock = FakeClock(london(2026, 3, 10, 21, 0))  # a Tuesday evening
    settings = e2e_settings(isolated, smtp_server, notify, notify_url)
    notifier = bootstrap(settings, clock=clock)
    case = "case-quiet"
    async with running(notifier):
        await publish(producer, settings, contacts_event(case, parent_by("sms"), CARER_WITHOUT_CONSENT))
        await contacts_stored(notifier, case)
        await publish(producer, settings, deadline_event("deadline.opened", case, due_on=date(2026, 4, 21)))

        async def deferred() -> bool:
            return [r.status for r in await rows(notifier, recipient_kind="family")] == ["deferred"]

        await eventually(deferred, 30, "the family's text deferred to the morning")
        await notifier.service.send_due()  # a pass of the sender at 21:00 sends nothing
        clock.set(london(2026, 3, 11, 7, 59))
        await notifier.service.send_due()
        assert notify.received == []

        clock.set(london(2026, 3, 11, 8, 0))

        async def texted() -> bool:
            return [r.status for r in await rows(notifier, recipient_kind="family")] == ["sent"]

        await eventually(texted, 30, "the text sent at 08:00")
    [text] = notify.notifications.values()
    assert text.type == "sms" and text.to == "+447700900111"
    assert text.body.startswith("Hertfordshire County Council got the EHC needs assessment request.")
    assert "21 April 2026" in text.body and case not in text.body and "Alex" not in text.body
    assert len(notify.received) == 1  # nothing to the carer, who gave no consent


async def test_429_and_500_are_retried_and_400_is_not(
    isolated, smtp_server: Mailbox, notify: NotifyStub, notify_url: str, producer, captured_logs,
) -> None:
    clock = FakeClock(london(2026, 3, 10, 10, 0))
    settings = e2e_settings(isolated, smtp_server, notify, notify_url)
    notifier = bootstrap(settings, clock=clock)
    async with running(notifier):
        notify.fail_next(1, 429, retry_after="30")
        notify.fail_next(1, 500)
        await publish(producer, settings, contacts_event("case-retry", parent_by("sms")))
        await contacts_stored(notifier, "case-retry")
        await publish(producer, settings, deadline_event("deadline.opened", "case-retry", due_on=date(2026, 4, 21)))

        async def family_row(status: str, attempts: int) -> bool:
            found = await rows(notifier, case_id="case-retry", recipient_kind="family")
            return [(r.status, r.attempts) for r in found] == [(status, attempts)]

        await eventually(lambda: family_row("temporary-failure", 1), 30, "the 429 recorded")
        clock.advance(hours=1)  # past any backoff (capped at an hour)
        await eventually(lambda: family_row("temporary-failure", 2), 30, "the 500 recorded")
        clock.advance(hours=1)
        await eventually(lambda: family_row("sent", 3), 30, "the third attempt accepted")
        assert [r.status_code for r in notify.received] == [429, 500, 201]

        notify.fail_next(1, 400, error="ValidationError", message="phone_number Not a UK mobile number")
        await publish(producer, settings, contacts_event("case-400", parent_by("sms", phone=SECOND_MOBILE)))
        await contacts_stored(notifier, "case-400")
        await publish(producer, settings, deadline_event("deadline.opened", "case-400", due_on=date(2026, 4, 21)))

        async def caseworker_told() -> bool:
            return bool(smtp_server.to(CASEWORKER[1]))

        await eventually(caseworker_told, 30, "the caseworker told of the failed text")
        clock.advance(hours=2)
        [failed] = await rows(notifier, case_id="case-400", recipient_kind="family")
        assert (failed.status, failed.attempts) == ("failed", 1)
        await notifier.service.send_due()
        assert len(notify.received) == 4  # the 400 was not tried again
        audit = await audit_events(settings, lambda es: any(e["data"]["status"] == "failed" for e in es))
        await assert_no_personal_data_stored_in_clear(notifier, audit)
    [alert] = smtp_server.to(CASEWORKER[1])
    text = body_text(alert)
    assert "case-400" in subject(alert) and "text message" in text and "400" in text
    assert personal_data_in(text + subject(alert)) == []
    retry_statuses = [e["data"]["status"] for e in audit if e["data"]["case_id"] == "case-retry"
                      and e["data"]["recipient_kind"] == "family"]
    assert retry_statuses == ["pending", "sending", "temporary-failure", "sending", "temporary-failure", "sending",
                              "sent"]


async def test_delivery_receipts_update_statuses(
    isolated, smtp_server: Mailbox, notify: NotifyStub, notify_url: str, producer, captured_logs,
) -> None:
    settings = e2e_settings(isolated, smtp_server, notify, notify_url)
    notifier = bootstrap(settings, clock=FakeClock(london(2026, 3, 10, 11, 0)))
    async with running(notifier), serve_http(notifier.api) as base:
        callback = f"{base}/v1/notify/callbacks"
        await publish(producer, settings, contacts_event("case-d", parent_by("sms")),
                      contacts_event("case-p", parent_by("sms", phone=SECOND_MOBILE)))
        await contacts_stored(notifier, "case-d", "case-p")
        await publish(producer, settings, deadline_event("deadline.opened", "case-d", due_on=date(2026, 4, 21)),
                      deadline_event("deadline.opened", "case-p", due_on=date(2026, 4, 21)))

        async def both_sent() -> bool:
            return [r.status for r in await rows(notifier, recipient_kind="family")] == ["sent", "sent"]

        await eventually(both_sent, 30, "both texts accepted by Notify")
        by_case = {r.case_id: r for r in await rows(notifier, recipient_kind="family")}
        delivered, failing = by_case["case-d"].provider_reference, by_case["case-p"].provider_reference

        answer = await notify.send_delivery_receipt(delivered, callback, CALLBACK_TOKEN, "delivered")
        assert answer.status_code == 200 and answer.json()["status"] == "delivered"
        refused = await notify.send_delivery_receipt(failing, callback, "not-the-token", "permanent-failure")
        assert refused.status_code == 401
        assert (await rows(notifier, case_id="case-p", recipient_kind="family"))[0].status == "sent"
        answer = await notify.send_delivery_receipt(failing, callback, CALLBACK_TOKEN, "permanent-failure")
        assert answer.json()["status"] == "permanent-failure"

        async def caseworker_told() -> bool:
            return bool(smtp_server.to(CASEWORKER[1]))

        await eventually(caseworker_told, 30, "the caseworker told of the undelivered text")
        audit = await audit_events(settings, lambda es: {"delivered", "permanent-failure"}
                                   <= {e["data"]["status"] for e in es})
        await assert_no_personal_data_stored_in_clear(notifier, audit)
    by_case = {r.case_id: r.status for r in await rows(notifier, recipient_kind="family")}
    assert by_case == {"case-d": "delivered", "case-p": "permanent-failure"}
    receipts = [e["data"] for e in audit if e["data"]["status"] in ("delivered", "permanent-failure")]
    assert {r["provider_reference"] for r in receipts} == {delivered, failing}
    assert "case-p" in subject(smtp_server.to(CASEWORKER[1])[0])
