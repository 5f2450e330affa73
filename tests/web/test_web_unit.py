"""Pure parts of the web front: who may see what, sessions that expire, family links, the
family timeline and the calendar feed."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from icalendar import Calendar

from services.web.domain import calendar_feed, views
from services.web.domain.people import staff_from_claims
from services.web.entrypoints.auth import current_staff
from shared.family_links import FamilyLinkRefused, make_token, read_token

SECRET = "s" * 40


def test_roles_from_claims_or_the_mapping() -> None:
    cw = staff_from_claims({"sub": "cw-1", "roles": ["caseworker"]}, roles_claim="roles", caseworker_claim="sub",
                           mapping={})
    assert cw is not None and cw.can_see("team-x", "cw-1") and not cw.can_see("team-x", "cw-2")
    mgr = staff_from_claims({"sub": "m-1", "email": "m@council.example"}, roles_claim="roles",
                            caseworker_claim="sub", mapping={"m@council.example": ["manager:team-a"]})
    assert mgr is not None and mgr.can_see("team-a", "cw-9") and not mgr.can_see("team-b", "cw-9")
    assert mgr.caseworker_id is None and mgr.is_manager
    area = staff_from_claims({"sub": "a-1", "roles": ["manager:area:east"]}, roles_claim="roles",
                             caseworker_claim="sub", mapping={})
    assert area is not None and area.can_see("team-z", "cw-9", "east") and not area.can_see("team-z", "cw-9", "west")
    assert staff_from_claims({"sub": "x", "roles": ["intern"]}, roles_claim="roles", caseworker_claim="sub",
                             mapping={}) is None


def test_a_session_ends_when_it_expires() -> None:
    staff = {"sub": "cw-1", "name": "A", "cw": "cw-1", "teams": [], "council": False, "admin": False}
    live = SimpleNamespace(session={"staff": staff, "expires_at": time.time() + 60})
    assert current_staff(live) is not None  # type: ignore[arg-type]
    ended = SimpleNamespace(session={"staff": staff, "expires_at": time.time() - 1})
    assert current_staff(ended) is None  # type: ignore[arg-type]


def test_family_links_are_signed() -> None:
    token = make_token(SECRET, "case-1", "cy")
    link = read_token(SECRET, token, 3600)
    assert (link.case_id, link.language) == ("case-1", "cy")
    with pytest.raises(FamilyLinkRefused, match="bad signature"):
        read_token("t" * 40, token, 3600)
    with pytest.raises(FamilyLinkRefused):
        read_token(SECRET, token.replace(".", "x.", 1), 3600)
    with pytest.raises(ValueError):
        make_token("short", "case-1")


def test_family_timeline_in_plain_words() -> None:
    deadlines = [
        {"rule_id": "assessment.decision", "due_on": "2026-03-23", "status": "met", "kind": "duty",
         "explanation": {"completed_on": "2026-03-20"}},
        {"rule_id": "plan.final", "due_on": "2026-06-29", "status": "breached", "kind": "duty", "explanation": {}},
        {"rule_id": "draft.representations", "due_on": "2026-06-01", "status": "open", "kind": "duty",
         "explanation": {}},  # the family's own time: never shown as the council's duty
    ]
    events = [{"type": "ehc.request.received", "occurred_on": "2026-02-09"},
              {"type": "ehc.case.assigned", "occurred_on": "2026-02-09"}]
    t = views.family_timeline(deadlines, events, date(2026, 7, 1))
    assert [s.what for s in t.happened] == ["The council received the request for an EHC needs assessment"]
    assert [(s.what, s.outcome) for s in t.next] == [("The council must issue the final EHC plan", "missed")]
    assert [(s.outcome) for s in t.council_deadlines] == ["met"]
    welsh = views.family_timeline(deadlines, events, date(2026, 7, 1), "cy")
    assert welsh.next[0].what.startswith("Rhaid i'r cyngor gyhoeddi")


def test_calendar_feed_has_all_day_events() -> None:
    body = calendar_feed.ics([{"deadline_id": "case-1:assessment.decision:1", "case_id": "case-1",
                               "rule_id": "assessment.decision", "due_on": "2026-03-23", "status": "open",
                               "explanation": {"title": "Decide whether to assess", "legal_source": "Regs 5(1)"}}],
                             "https://ehc.example", "Testshire", datetime(2026, 3, 1, tzinfo=UTC))
    [event] = Calendar.from_ical(body).walk("VEVENT")
    assert event.decoded("dtstart") == date(2026, 3, 23) and "case-1" in str(event["summary"])
    assert str(event["url"]) == "https://ehc.example/cases/case-1"
