"""Issue 9: every English text to a family fits one SMS fragment (160 GSM-7 characters), a decision
that carries the family's own deadlines two (306), Welsh one fragment more at most. Measured at the
longest values a council may configure (FIELD_MAX_LENGTHS), the longest date and, for the missed
deadline text, the longest duty wording; each message kind and each branch of it.

Issue 10: every one of them carries the family's short link to their child's timeline
(``<web base url>/f/<12-character code>``, with a web address of up to 25 characters), and still fits."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.notifier.domain.messages import FAMILY_DUTIES, FIELD_MAX_LENGTHS, TEMPLATES, render, sms_length
from shared.family_links import new_short_code, short_link_length, short_link_url

SHORT_LINK_BASE_MAX = 25  # e.g. https://send.herts.gov.uk

LONGEST_DATES = [date(2026, 9, 30), date(2026, 7, 29), date(2026, 2, 28)]  # September; Gorffennaf, Chwefror


def at_max(name: str) -> str:
    if name == "link":  # the short link of a web front whose address is as long as a text allows
        return short_link_url("https://" + "l" * (SHORT_LINK_BASE_MAX - 8), new_short_code())
    return "x" * FIELD_MAX_LENGTHS[name]


def test_the_link_budget_is_a_short_link_of_a_web_address_of_25_characters() -> None:
    assert FIELD_MAX_LENGTHS["link"] == short_link_length("x" * SHORT_LINK_BASE_MAX) == len(at_max("link"))


def context(day: date, **extra: Any) -> dict[str, Any]:
    return {"council_name": at_max("council_name"), "link": at_max("link"), "council_phone": at_max("council_phone"),
            "sendiass_contact": at_max("sendiass_contact"), "due_on": day, "comments_by": day, "appeal_by": day,
            "mediation_by": day - timedelta(days=1),  # a date of its own: the longest wording
            "final_due_on": day, "review_due_on": day, "received_on": day,
            "previous_due_on": day - timedelta(days=2), **extra}  # September 28 or Gorffennaf 27


def longest_duty(language: str) -> str:
    return max(FAMILY_DUTIES, key=lambda r: len(FAMILY_DUTIES[r][language]))


CASES: list[tuple[str, dict[str, Any], int]] = [
    ("family_request_received", {}, 1),
    ("family_decision_made", {"decision": "assess"}, 1),
    ("family_decision_made", {"decision": None}, 1),
    ("family_decision_made", {"decision": "refuse"}, 2),
    ("family_decision_made", {"decision": "refuse", "appeal_by": None, "mediation_by": None}, 2),
    ("family_review_decision", {"outcome": "amend"}, 1),
    ("family_review_decision", {"outcome": "maintain"}, 2),
    ("family_review_decision", {"outcome": "cease"}, 2),
    ("family_draft_plan_issued", {}, 1),
    ("family_plan_issued", {}, 1),
    ("family_review_due", {}, 1),
    ("family_deadline_reminder", {"rule_id": "draft.representations"}, 1),
    ("family_deadline_reminder", {"rule_id": "mediation.adviser_contact"}, 1),
    ("family_deadline_reminder", {"rule_id": "appeal.deadline"}, 1),
    ("family_deadline_missed", {"rule_id": "longest"}, 1),
    # issue 11 item 2: a moved date, for each reason, a council duty (the longest wording) or the family's own
    ("family_date_changed", {"rule_id": "longest", "change_reason": "ruleset"}, 1),
    ("family_date_changed", {"rule_id": "longest", "change_reason": "calendar"}, 1),
    ("family_date_changed", {"rule_id": "longest", "change_reason": "events"}, 1),
    ("family_date_changed", {"rule_id": "draft.representations", "change_reason": "ruleset"}, 1),
    ("family_date_changed", {"rule_id": "mediation.adviser_contact", "change_reason": "events"}, 1),
    ("family_date_changed", {"rule_id": "appeal.deadline", "change_reason": "calendar"}, 1),
]


@pytest.mark.parametrize(("template", "extra", "fragments"), CASES,
                         ids=[f"{t}-{'-'.join(str(v) for v in e.values()) or 'all'}" for t, e, _ in CASES])
@pytest.mark.parametrize("language", ["en", "cy"])
def test_each_family_text_fits_its_fragments(template: str, extra: dict[str, Any], fragments: int,
                                             language: str) -> None:
    if extra.get("rule_id") == "longest":
        extra = {**extra, "rule_id": longest_duty(language)}
    allowed = fragments + (1 if language == "cy" else 0)
    for day in LONGEST_DATES:
        values = context(day, **extra)
        body = render(template, language, "sms", values).body
        assert body.endswith(" " + values["link"]), body  # the link to the child's timeline, whole
        length = sms_length(body)
        assert length.encoding == "GSM", body
        assert length.fragments <= allowed, f"{length.characters} characters: {body}"


def test_only_decisions_with_the_familys_deadlines_may_take_two_fragments() -> None:
    assert {name for name, spec in TEMPLATES.items() if spec.sms_fragments > 1} == {"family_decision_made",
                                                                                    "family_review_decision"}
    assert {t for t, _, f in CASES} == {n for n, s in TEMPLATES.items() if s.audience == "family"}


def test_the_measure_counts_gsm_extension_characters_twice_and_unicode_as_ucs2() -> None:
    assert sms_length("a" * 160).fragments == 1
    assert sms_length("a" * 159 + "€").fragments == 2  # € is two units
    assert sms_length("a" * 69 + "ŵ").fragments == 1 and sms_length("a" * 70 + "ŵ").fragments == 2
