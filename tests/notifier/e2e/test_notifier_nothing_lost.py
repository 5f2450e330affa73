"""Nothing lost (issue 9): a family's contacts that reach the notifier after the deadline events of
their case (a backlog after an outage, a council recording contacts after the request) still get
every milestone text that is current, exactly once, through real Kafka, PostgreSQL and SMTP."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from services.notifier.adapters import tables
from services.notifier.bootstrap import bootstrap
from tests.conftest import Mailbox, eventually
from tests.e2e.harness import running
from tests.notifier.e2e.conftest import PARENT_EMAIL, PARENT_NAME, e2e_settings, publish, rows
from tests.notifier.helpers import FakeClock, contacts_event, deadline_event, london
from tests.notifier.notify_stub import NotifyStub

pytestmark = pytest.mark.infra

CASES = 40
DECIDED = 10  # of which the council has already decided whether to assess


def address(case_id: str) -> str:
    return PARENT_EMAIL.replace("@", f"+{case_id}@")


def second(case_id: str) -> str:
    return PARENT_EMAIL.replace("@", f"+second+{case_id}@")


async def test_contacts_after_a_backlog_of_deadline_events_get_every_current_milestone_once(
    isolated, smtp_server: Mailbox, notify: NotifyStub, notify_url: str, producer, captured_logs,
) -> None:
    settings = e2e_settings(isolated, smtp_server, notify, notify_url)
    cases = [f"case-{i}" for i in range(CASES)]
    # the notifier is down: the deadline events of 40 requests pile up
    for i, case in enumerate(cases):
        await publish(producer, settings, deadline_event("deadline.opened", case, due_on=date(2026, 4, 21)))
        if i < DECIDED:
            await publish(producer, settings, deadline_event("deadline.met", case, due_on=date(2026, 4, 21),
                                                             completed_on=date(2026, 3, 9)))
    notifier = bootstrap(settings, clock=FakeClock(london(2026, 3, 10, 10, 0)))
    async with running(notifier):
        async def projected() -> bool:
            async with notifier.sessions() as session:
                return await session.scalar(select(func.count()).select_from(tables.deadline_view)) == CASES

        await eventually(projected, 60, "the backlog of deadline events handled")
        assert await rows(notifier, recipient_kind="family") == []  # nobody to tell yet
        # the council records the families' contacts after the events
        await publish(producer, settings, *(contacts_event(case, {
            "role": "parent", "name": PARENT_NAME, "email": address(case), "channel": "email", "consent": True})
            for case in cases))

        async def all_told() -> bool:
            family = await rows(notifier, recipient_kind="family")
            return len(family) == CASES and all(r.status == "sent" for r in family)

        await eventually(all_told, 90, "every family emailed")
        # the contacts again for five cases (a council's re-sync), with a second parent who now
        # consents: only the new parent hears, of the milestone still current
        await publish(producer, settings, *(contacts_event(case, *(
            {"role": "parent", "name": PARENT_NAME, "email": a, "channel": "email", "consent": True}
            for a in (address(case), second(case)))) for case in cases[:5]))

        async def second_parents_told() -> bool:
            family = await rows(notifier, recipient_kind="family")
            return len(family) == CASES + 5 and all(r.status == "sent" for r in family)

        await eventually(second_parents_told, 60, "the second parents emailed")
        family = await rows(notifier, recipient_kind="family")

    kinds = Counter(r.kind for r in family)
    assert kinds == {"family_family_request_received": CASES - DECIDED, "family_family_decision_made": DECIDED + 5}
    per_address = Counter(str(m["To"]) for m in smtp_server.messages if "+case-" in str(m["To"]))
    assert sorted(per_address) == sorted([address(c) for c in cases] + [second(c) for c in cases[:5]])
    assert set(per_address.values()) == {1}
    ids = [str(m["Message-ID"]) for m in smtp_server.messages]
    assert len(ids) == len(set(ids))


async def test_an_exception_nudge_with_the_longest_event_id_does_not_stop_the_alerts_after_it(
    isolated, smtp_server: Mailbox, notify: NotifyStub, notify_url: str, producer, captured_logs,
) -> None:
    """With caseworker_reminders=immediate, PostgreSQL refused the nudge's kind on every retry and
    the notifier stopped consuming: no breach alert went out after it."""
    settings = e2e_settings(isolated, smtp_server, notify, notify_url, caseworker_reminders="immediate")
    notifier = bootstrap(settings, clock=FakeClock(london(2026, 3, 10, 10, 0)))
    async with running(notifier):
        await publish(producer, settings,
                      deadline_event("deadline.exception", "case-x", due_on=date(2026, 4, 21), exception="E3",
                                     event_id="x" * 200),
                      deadline_event("deadline.breached", "case-x", "plan.final", due_on=date(2026, 3, 9)))

        async def both_sent() -> bool:
            found = {r.kind: r.status for r in await rows(notifier, case_id="case-x")}
            return found == {f"caseworker_exception_{'x' * 200}": "sent", "breach_alert": "sent"}

        await eventually(both_sent, 60, "the nudge and the breach alert after it sent")
