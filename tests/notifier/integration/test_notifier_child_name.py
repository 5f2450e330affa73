"""Issue 9: the child's first name may be used in emails to the family where the contacts carry it and
the council allows it (off by default); never in a text, never stored in clear."""

from __future__ import annotations

import json

import pytest

from tests.notifier.helpers import (
    FakeClock,
    assessment_agreed_and_sent,
    contacts_event,
    london,
    notification_rows,
)

pytestmark = pytest.mark.infra

CASE = "case-child"
PARENT = {"role": "parent", "name": "Alex Morgan", "email": "alex@example.org", "channel": "email", "consent": True}


async def agreed_assessment(built) -> str:
    event = contacts_event(CASE, PARENT)
    event = event.model_copy(update={"data": event.data.model_copy(update={"child_first_name": "Zebedee"})})
    await built.service.handle_contacts([(CASE, event)])
    await assessment_agreed_and_sent(built, CASE)
    [email] = built.email.to("alex@example.org")
    assert "Zebedee" not in json.dumps([r.context for r in await notification_rows(built.sessions)])
    return email.body


async def test_the_childs_first_name_only_when_the_council_allows_it(make_notifier) -> None:
    allowed = await make_notifier(clock=FakeClock(london(2026, 3, 10, 10, 0)), use_child_first_name=True)
    assert "needs assessment for Zebedee" in await agreed_assessment(allowed)
    default = await make_notifier(clock=FakeClock(london(2026, 3, 10, 10, 0)))
    assert "Zebedee" not in await agreed_assessment(default)
