"""Issue 9 acceptance, end to end through real Kafka and PostgreSQL: the deadline events of a 2025
case, loaded in November 2026, text nobody about 2025; each would-be message is recorded as
historical on the audit topic. A milestone of the day before, published after them, is still sent
(so the silence is the policy's, not a notifier that never ran)."""

from __future__ import annotations

from datetime import date

import pytest

from services.notifier.bootstrap import bootstrap
from tests.conftest import Mailbox, eventually
from tests.e2e.harness import running
from tests.notifier.e2e.conftest import PARENT_MOBILE, PARENT_NAME, audit_events, e2e_settings, publish, rows
from tests.notifier.e2e.test_notifier_acceptance import contacts_stored
from tests.notifier.helpers import FakeClock, contacts_event, deadline_event, history_of_a_2025_case, london
from tests.notifier.notify_stub import NotifyStub

pytestmark = pytest.mark.infra

CASE = "case-from-2025"


async def test_a_backfill_of_a_2025_case_texts_nobody_about_2025(
    isolated, smtp_server: Mailbox, notify: NotifyStub, notify_url: str, producer, captured_logs,
) -> None:
    settings = e2e_settings(isolated, smtp_server, notify, notify_url)
    notifier = bootstrap(settings, clock=FakeClock(london(2026, 11, 18, 10, 0)))
    parent = {"role": "parent", "name": PARENT_NAME, "phone": PARENT_MOBILE, "channel": "sms", "consent": True}
    async with running(notifier):
        await publish(producer, settings, contacts_event(CASE, parent))
        await contacts_stored(notifier, CASE)
        await publish(producer, settings, *history_of_a_2025_case(CASE))
        # then real news: the annual review, due in December, was opened yesterday
        await publish(producer, settings, deadline_event("deadline.due_soon", CASE, "review.annual",
                                                         due_on=date(2026, 12, 2), reminder_offset_days=10))

        async def news_sent() -> bool:
            return [r.status for r in await rows(notifier, kind="family_family_review_due")] == ["sent"]

        await eventually(news_sent, 30, "the text about this year's review sent")
        audit = await audit_events(settings, lambda es: sum(e["data"]["status"] == "historical" for e in es) >= 4)

    family = await rows(notifier, recipient_kind="family")
    historical = [r for r in family if r.status == "historical"]
    assert {r.kind for r in historical} >= {"family_family_request_received", "family_family_draft_plan_issued",
                                            "family_family_plan_issued"}
    assert [r.kind for r in family if r.status != "historical"] == ["family_family_review_due"]
    [text] = notify.notifications.values()  # one text in all: this year's
    assert "2025" not in text.body
    recorded = {(e["data"]["kind"], e["data"]["status"]) for e in audit}
    assert ("family_family_request_received", "historical") in recorded
    sent = {e["data"]["deadline_id"] for e in audit if e["data"]["status"] in ("sending", "sent")}
    assert sent <= {f"{CASE}:review.annual:1"}
