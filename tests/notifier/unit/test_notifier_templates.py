"""Message templates: every one renders in English and Welsh; texts to families stay short and
carry nothing about the child; errors are clear."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment

from services.notifier.domain.messages import (
    ENVIRONMENT,
    FAMILY_DUTIES,
    FAMILY_SMS_FIELDS,
    FIELD_HARD_MAX_LENGTHS,
    LANGUAGES,
    MAX_SMS_FRAGMENTS,
    RULE_NAMES,
    TEMPLATES,
    TEMPLATES_DIR,
    FieldTooLong,
    MissingTemplateVariable,
    SmsTooLong,
    TemplateRenderError,
    UnknownTemplate,
    allowed_fields,
    format_date,
    render,
    sms_length,
    template_path,
)

OVERDUE = {"case_id": "case-7f3a9c", "rule_id": "plan.final", "due_on": date(2026, 3, 2),
           "working_days_overdue": 4, "case_url": "https://ehc.example/cases/case-7f3a9c"}
DUE_SOON = {"case_id": "case-1b2c", "rule_id": "assessment.decision", "due_on": date(2026, 3, 9),
            "working_days_left": 0, "case_url": "https://ehc.example/cases/case-1b2c"}

FULL_CONTEXT: dict[str, Any] = {
    "case_id": "case-7f3a9c", "rule_id": "assessment.decision", "due_on": date(2026, 3, 27),
    "case_url": "https://ehc.example/cases/case-7f3a9c", "working_days_left": 3, "working_days_overdue": 2,
    "legal_source": "Regs 5(1); 4(1)", "period_text": "6 weeks from the day the request was received",
    "flags": ["unconfirmed", "guidance"], "exception": "E3", "caseworker_name": "Sam Patel",
    "digest_date": date(2026, 3, 24), "overdue": [OVERDUE], "due_soon": [DUE_SOON], "cases_url": "https://ehc.example/cases",
    "failed_template": "family_request_received", "channel_kind": "sms",
    "reason": "GOV.UK Notify answered 400 (ValidationError: phone_number Not a UK mobile number)",
    "council_name": "Hertfordshire County Council", "info_url": "https://www.hertfordshire.gov.uk/send",
    "link": "https://herts.gov.uk/ehc", "decision": "refuse", "outcome": "maintain", "mediation_by": date(2026, 5, 27),
    "council_phone": "0300 123 4043", "sendiass_contact": "Herts SENDIASS 01992 555847", "recipient_name": "Alex",
    "received_on": date(2026, 2, 13), "appeal_by": date(2026, 5, 27), "comments_by": date(2026, 6, 1),
    "final_due_on": date(2026, 7, 3), "review_due_on": date(2027, 7, 2), "scope_name": "East team",
    "at_risk_url": "https://ehc.example/at-risk", "week_start": date(2026, 3, 23), "week_end": date(2026, 3, 29),
    "counts": {"opened": 12, "met_on_time": 9, "met_late": 2, "breached": 1, "overdue_now": 3, "due_next_week": 7},
    "oldest_overdue": [OVERDUE], "timeliness": {"including": 61.5, "excluding": 72.0},
    "report_url": "https://ehc.example/report", "breaches": [OVERDUE], "breach_count": 2,
    "topic_words": "a question", "timeline_url": "https://ehc.example/family/TOKEN",
    "previous_due_on": date(2026, 3, 20), "change_reason": "calendar",
    "change_detail": "the working-day calendar changed",
}

ALL_RENDERINGS = [
    (name, language, kind) for name, spec in sorted(TEMPLATES.items()) for kind in sorted(spec.kinds)
    for language in LANGUAGES
]
SMS_RENDERINGS = [(n, lang, k) for n, lang, k in ALL_RENDERINGS if k == "sms"]
FAMILY_SMS = [(n, lang) for n, lang, k in SMS_RENDERINGS if TEMPLATES[n].audience == "family"]

# what a caller might pass that must never reach a family's phone
SECRETS = {"child_name": "Zebedee Quux", "case_id": "case-SECRET-42", "health_detail": "autism diagnosis",
           "upn": "A123456789012", "recipient_name": "Ms Parent-Name", "caseworker_name": "Caseworker Name",
           "case_url": "https://ehc.example/cases/case-SECRET-42", "period_text": "SECRET period"}


@pytest.mark.parametrize(("name", "language", "kind"), ALL_RENDERINGS)
def test_every_template_renders(name: str, language: str, kind: str) -> None:
    rendered = render(name, language, kind, FULL_CONTEXT)
    assert rendered.body.strip() == rendered.body and rendered.body
    assert "\n\n\n" not in rendered.body
    assert ("{{" not in rendered.body) and ("{%" not in rendered.body) and ("((" not in rendered.body)
    if kind == "email":
        assert rendered.subject and "\n" not in rendered.subject
    else:
        assert rendered.subject == ""
        assert sms_length(rendered.body).fragments <= MAX_SMS_FRAGMENTS


@pytest.mark.parametrize(("name", "language", "kind"), ALL_RENDERINGS)
def test_every_template_renders_with_only_its_required_fields(name: str, language: str, kind: str) -> None:
    spec = TEMPLATES[name]
    minimal = {field: FULL_CONTEXT[field] for field in spec.required}
    assert render(name, language, kind, minimal).body


def test_english_and_welsh_say_the_key_facts() -> None:
    en = render("family_deadline_missed", "en", "sms", FULL_CONTEXT).body
    assert en == ("Hertfordshire County Council missed the 27 March 2026 deadline to decide whether to assess EHC "
                  "needs. https://herts.gov.uk/ehc")
    email = render("family_deadline_missed", "en", "email", FULL_CONTEXT).body
    assert "(SENDIASS) at Herts SENDIASS 01992 555847" in email and "0300 123 4043" in email
    cy = render("family_deadline_missed", "cy", "sms", FULL_CONTEXT).body
    assert "27 Mawrth 2026" in cy and "https://herts.gov.uk/ehc" in cy
    reminder = render("caseworker_reminder", "en", "email", FULL_CONTEXT)
    assert reminder.subject == "Due in 3 working days: Decide whether to assess, case case-7f3a9c"
    facts = ("Friday 27 March 2026", "Regs 5(1); 4(1)", "https://ehc.example/cases/case-7f3a9c",
             "6 weeks from the day the request was received", "not yet been confirmed", "guidance, not a legal duty")
    for fact in facts:
        assert fact in reminder.body


def test_due_today_and_one_working_day() -> None:
    today = render("caseworker_reminder", "en", "email", {**FULL_CONTEXT, "working_days_left": 0})
    assert today.subject.startswith("Due today:") and "that is today" in today.body
    one = render("caseworker_reminder", "en", "email", {**FULL_CONTEXT, "working_days_left": 1})
    assert one.subject.startswith("Due in 1 working day:")
    cy = render("caseworker_reminder", "cy", "email", {**FULL_CONTEXT, "working_days_left": 1})
    assert "1 diwrnod gwaith" in cy.subject


def test_digests_list_every_item_and_say_when_there_is_nothing() -> None:
    items = [dict(OVERDUE, case_id=f"case-{i}") for i in range(5)]
    digest = render("caseworker_daily_digest", "en", "email", {**FULL_CONTEXT, "overdue": items, "due_soon": []})
    assert all(f"Case case-{i}:" in digest.body for i in range(5))
    assert "5 overdue, 0 due soon" in digest.subject
    assert "Nothing else is due" in digest.body


@pytest.mark.parametrize(("reason", "why"), [
    ("ruleset", "a correction to how the legal time limit is counted"),
    ("calendar", "a bank holiday"),
    ("events", "the case's records were corrected"),
])
def test_a_moved_date_says_the_new_date_the_old_one_and_why_in_plain_words(reason: str, why: str) -> None:
    context = {**FULL_CONTEXT, "change_reason": reason}
    text = render("family_date_changed", "en", "sms", context).body
    # the text: the new date and the link to the timeline (issue 10); the old date and why: the email
    assert text == ("New date: Hertfordshire County Council must decide whether to assess EHC needs by 27 March "
                    "2026. https://herts.gov.uk/ehc")
    assert sms_length(text).fragments == 1, text
    email = render("family_date_changed", "en", "email", context)
    assert why in email.body, email.body
    assert "Friday 27 March 2026" in email.body and "Friday 20 March 2026" in email.body
    assert "calendar changed" not in email.body  # the deadlines service's own words are for staff
    staff = render("caseworker_date_changed", "en", "email", context)
    assert staff.subject == "Date changed: Decide whether to assess, case case-7f3a9c"
    for fact in ("Friday 27 March 2026", "Friday 20 March 2026", "the working-day calendar changed",
                 "Regs 5(1); 4(1)", "https://ehc.example/cases/case-7f3a9c"):
        assert fact in staff.body
    assert "27 Mawrth 2026" in render("family_date_changed", "cy", "sms", context).body


def test_the_familys_own_moved_deadline_is_worded_as_theirs() -> None:
    context = {**FULL_CONTEXT, "rule_id": "appeal.deadline", "change_reason": "calendar"}
    assert "you have until 27 March 2026, not 20 March 2026, to appeal to the tribunal" in render(
        "family_date_changed", "en", "sms", context).body


# --- texts to families -------------------------------------------------------------------------


def _longest(language: str, kind: str) -> dict[str, Any]:
    """The longest plausible values: every free-text field at its maximum length, the longest
    wordings, dates with the longest month names."""
    longest_date = date(2026, 9, 30) if language == "en" else date(2026, 7, 31)  # September / Gorffennaf
    assert len(format_date(longest_date, language)) == max(
        len(format_date(date(2026, m, 28), language)) for m in range(1, 13)
    )
    context: dict[str, Any] = {name: "W" * limit for name, limit in FIELD_HARD_MAX_LENGTHS.items()}
    context["info_url"] = "https://" + "w" * (FIELD_HARD_MAX_LENGTHS["info_url"] - 8)
    for field in ("due_on", "received_on", "comments_by", "appeal_by", "final_due_on", "review_due_on",
                  "previous_due_on"):
        context[field] = longest_date
    context["rule_id"] = max(FAMILY_DUTIES, key=lambda rule: len(FAMILY_DUTIES[rule][language]))  # type: ignore[index]
    return context


@pytest.mark.parametrize(("name", "language"), FAMILY_SMS)
def test_family_texts_fit_in_three_fragments_with_the_longest_inputs(name: str, language: str) -> None:
    body = render(name, language, "sms", _longest(language, "sms")).body
    length = sms_length(body)
    assert length.encoding == "GSM", "a family text must not be forced into UCS-2 (70 characters a fragment)"
    assert length.characters <= 459, body
    assert length.fragments <= MAX_SMS_FRAGMENTS


@pytest.mark.parametrize(("name", "language"), FAMILY_SMS)
@pytest.mark.parametrize("rule_id", sorted(FAMILY_DUTIES))
def test_family_texts_fit_for_every_duty(name: str, language: str, rule_id: str) -> None:
    body = render(name, language, "sms", {**_longest(language, "sms"), "rule_id": rule_id}).body
    assert sms_length(body).fragments <= MAX_SMS_FRAGMENTS


def _variables(source_name: str, seen: set[str] | None = None) -> set[str]:
    """Every variable a template file reads, following its includes."""
    seen = seen if seen is not None else set()
    if source_name in seen:
        return set()
    seen.add(source_name)
    source = (TEMPLATES_DIR / source_name).read_text()
    ast = ENVIRONMENT.parse(source)
    names = set(meta.find_undeclared_variables(ast))
    for included in meta.find_referenced_templates(ast):
        assert included is not None
        names |= _variables(included, seen)
    return names - {"language", "item"}  # our own: the language, and a digest's loop variable


@pytest.mark.parametrize(("name", "language"), FAMILY_SMS)
def test_family_texts_use_only_allowed_fields(name: str, language: str) -> None:
    used = _variables(template_path(name, language, "sms"))
    assert used <= FAMILY_SMS_FIELDS, f"{name} ({language}) reads {sorted(used - FAMILY_SMS_FIELDS)}"


def test_the_allowed_fields_are_dates_council_links_service_phones_and_a_rule() -> None:
    assert FAMILY_SMS_FIELDS == {
        "council_name", "info_url", "link", "council_phone", "sendiass_contact", "rule_id", "decision", "outcome",
        "due_on", "received_on", "comments_by", "appeal_by", "mediation_by", "final_due_on", "review_due_on",
        "previous_due_on", "change_reason",  # a moved date: the date before, and why as a closed word
    }


@pytest.mark.parametrize(("name", "language"), FAMILY_SMS)
def test_family_texts_never_carry_a_name_a_case_or_health_detail(name: str, language: str) -> None:
    rendered = render(name, language, "sms", {**FULL_CONTEXT, **SECRETS})
    for secret in SECRETS.values():
        assert secret not in rendered.body
        assert all(secret not in value for value in rendered.personalisation.values())
    assert set(rendered.personalisation) <= FAMILY_SMS_FIELDS | {"body", "duty", "rule_name"}


@pytest.mark.parametrize("name", sorted(n for n, spec in TEMPLATES.items() if spec.audience == "family"))
def test_family_emails_only_greet_by_name(name: str) -> None:
    body = render(name, "en", "email", {**FULL_CONTEXT, **SECRETS}).body
    assert body.startswith("Dear Ms Parent-Name,")
    for key, secret in SECRETS.items():
        if key != "recipient_name":
            assert secret not in body


def test_a_text_longer_than_three_fragments_is_refused() -> None:
    context = {**FULL_CONTEXT, "breaches_url": "https://ehc.example/" + "x" * 400}
    with pytest.raises(SmsTooLong, match=r"manager_breach \(en, sms\) is \d+ GSM characters, 4 fragments"):
        render("manager_breach", "en", "sms", context)
    assert render("manager_breach", "en", "email", context).body


@given(
    council=st.text(alphabet=st.characters(codec="ascii", categories=("L", "N", "Zs")), max_size=50),
    phone=st.from_regex(r"[0-9 ]{0,30}", fullmatch=True),
)
def test_family_text_length_holds_for_any_council_within_limits(council: str, phone: str) -> None:
    context = {**_longest("en", "sms"), "council_name": council or "Council", "council_phone": phone or "0"}
    for name, language in FAMILY_SMS:
        assert sms_length(render(name, language, "sms", context).body).fragments <= MAX_SMS_FRAGMENTS


def test_a_council_name_too_long_for_a_text_is_refused() -> None:
    context = {**FULL_CONTEXT, "council_name": "C" * (FIELD_HARD_MAX_LENGTHS["council_name"] + 1)}
    with pytest.raises(FieldTooLong, match="council_name is longer than 50"):
        render("family_request_received", "en", "sms", context)
    assert render("family_request_received", "en", "email", context).body  # emails have room


def test_a_missed_deadline_is_only_worded_for_council_duties() -> None:
    with pytest.raises(TemplateRenderError, match="no wording for families for rule 'draft.representations'"):
        render("family_deadline_missed", "en", "sms", {**FULL_CONTEXT, "rule_id": "draft.representations"})


def test_welsh_templates_are_marked_for_review() -> None:
    for path in (TEMPLATES_DIR / "cy").glob("*.txt"):
        assert "REVIEW: Welsh translation" in path.read_text(), path.name


# --- consistency and errors ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "language", "kind"), ALL_RENDERINGS)
def test_templates_read_only_the_fields_their_spec_declares(name: str, language: str, kind: str) -> None:
    used = _variables(template_path(name, language, kind))
    allowed = allowed_fields(TEMPLATES[name], kind)
    assert used <= allowed, f"{name} ({language}, {kind}) reads undeclared {sorted(used - allowed)}"


def test_every_template_file_belongs_to_a_spec() -> None:
    expected = {template_path(n, lang, k) for n, lang, k in ALL_RENDERINGS}
    found = {
        f"{p.parent.name}/{p.name}" for p in TEMPLATES_DIR.glob("*/*.txt") if not p.name.startswith("_")
    }
    assert found == expected


def test_every_family_duty_has_a_rule_name() -> None:
    assert set(FAMILY_DUTIES) <= set(RULE_NAMES)
    assert all(set(w) == {"en", "cy"} for w in (*FAMILY_DUTIES.values(), *RULE_NAMES.values()))


def test_unknown_template_language_or_kind() -> None:
    with pytest.raises(UnknownTemplate, match="unknown template 'nope'"):
        render("nope", "en", "email", FULL_CONTEXT)
    with pytest.raises(UnknownTemplate, match="language must be one of en, cy"):
        render("caseworker_reminder", "fr", "email", FULL_CONTEXT)
    with pytest.raises(UnknownTemplate, match="sent by email only"):
        render("caseworker_reminder", "en", "sms", FULL_CONTEXT)


def test_a_missing_field_is_named() -> None:
    context = {k: v for k, v in FULL_CONTEXT.items() if k not in ("due_on", "case_url")}
    with pytest.raises(MissingTemplateVariable, match=r"caseworker_reminder \(en, email\) needs case_url, due_on"):
        render("caseworker_reminder", "en", "email", context)


def test_a_digest_item_missing_a_key_is_named() -> None:
    item = {k: v for k, v in OVERDUE.items() if k != "working_days_overdue"}
    with pytest.raises(MissingTemplateVariable, match="working_days_overdue"):
        render("caseworker_daily_digest", "en", "email", {**FULL_CONTEXT, "overdue": [item]})


def test_a_bad_date_is_a_render_error() -> None:
    with pytest.raises(TemplateRenderError, match="family_review_due"):
        render("family_review_due", "en", "sms", {**FULL_CONTEXT, "due_on": "soon"})
    # also a date the text does not show, but Notify's personalisation would
    with pytest.raises(TemplateRenderError, match=r"family_request_received \(en, sms\)"):
        render("family_request_received", "en", "sms", {**FULL_CONTEXT, "received_on": "yesterday"})


def test_the_environment_is_a_strict_sandbox_without_escaping() -> None:
    assert isinstance(ENVIRONMENT, SandboxedEnvironment)
    assert ENVIRONMENT.undefined is StrictUndefined
    assert ENVIRONMENT.autoescape is False
    body = render("caseworker_delivery_failed", "en", "email", {**FULL_CONTEXT, "reason": "a <b> & 'c'"}).body
    assert "a <b> & 'c'" in body


# --- personalisation for GOV.UK Notify ---------------------------------------------------------


def test_personalisation_is_strings_with_dates_in_words() -> None:
    rendered = render("family_deadline_missed", "cy", "sms", FULL_CONTEXT)
    p = rendered.personalisation
    assert p["due_on"] == "27 Mawrth 2026"
    assert p["council_name"] == "Hertfordshire County Council"
    assert p["duty"] == FAMILY_DUTIES["assessment.decision"]["cy"]
    assert p["body"] == rendered.body
    assert all(isinstance(v, str) for v in p.values())
    email = render("caseworker_daily_digest", "en", "email", FULL_CONTEXT).personalisation
    assert "overdue" not in email and email["subject"].startswith("Your EHC deadlines")


# --- dates and SMS length ------------------------------------------------------------------------


def test_dates_in_english_and_welsh() -> None:
    assert format_date(date(2026, 3, 27)) == "27 March 2026"
    assert format_date("2026-03-27", "en", weekday=True) == "Friday 27 March 2026"
    assert format_date(date(2026, 3, 27), "cy", weekday=True) == "Dydd Gwener 27 Mawrth 2026"
    # 23:30 UTC on 31 May is already 1 June in London (BST)
    assert format_date(datetime(2026, 5, 31, 23, 30, tzinfo=UTC)) == "1 June 2026"


@pytest.mark.parametrize(
    ("text", "encoding", "characters", "fragments"),
    [
        ("a" * 160, "GSM", 160, 1),
        ("a" * 161, "GSM", 161, 2),
        ("a" * 459, "GSM", 459, 3),
        ("a" * 460, "GSM", 460, 4),
        ("€" * 80, "GSM", 160, 1),  # an extended GSM character counts twice
        ("ŵ" * 70, "UCS-2", 70, 1),  # a Welsh circumflex forces UCS-2
        ("ŵ" + "a" * 200, "UCS-2", 201, 3),
        ("ŵ" + "a" * 201, "UCS-2", 202, 4),
    ],
)
def test_sms_length(text: str, encoding: str, characters: int, fragments: int) -> None:
    length = sms_length(text)
    assert (length.encoding, length.characters, length.fragments) == (encoding, characters, fragments)


def test_the_caseworker_digest_lists_new_deadlines_and_exceptions() -> None:
    new = {**DUE_SOON, "case_id": "case-new", "due_on": date(2026, 6, 1), "legal_source": "Regs 10(1)"}
    exception = {**OVERDUE, "case_id": "case-exc"}
    for language, heading in (("en", "New since the last list (1):"), ("cy", "Newydd ers y rhestr ddiwethaf (1):")):
        digest = render("caseworker_daily_digest", language, "email",
                        {**FULL_CONTEXT, "new": [new], "exceptions": [exception]})
        assert heading in digest.body and "case-new" in digest.body and "(Regs 10(1))" in digest.body
        assert "case-exc" in digest.body
    assert render("caseworker_daily_digest", "en", "email",
                  {**FULL_CONTEXT, "new": [new]}).subject.endswith("1 overdue, 1 due soon, 1 new")


def test_a_managers_at_risk_list_says_when_it_is_cut_short() -> None:
    context = {**FULL_CONTEXT, "overdue_count": 250, "due_soon_count": 40}
    digest = render("manager_daily_at_risk", "en", "email", context)
    assert "250 overdue, 40 due soon" in digest.subject
    assert "Showing the first 1 of 250" in digest.body
    assert "Showing" not in render("manager_daily_at_risk", "en", "email", FULL_CONTEXT).body


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_managers_text_carries_no_case_reference_only_a_link(language: str) -> None:
    text = render("manager_breach", language, "sms", {**FULL_CONTEXT, "breaches_url": "https://ehc.example/breaches"})
    assert "case-7f3a9c" not in text.body and "https://ehc.example/breaches" in text.body
    assert "case-7f3a9c" in render("manager_breach", language, "email", FULL_CONTEXT).body


@pytest.mark.parametrize("language", LANGUAGES)
def test_family_emails_link_to_the_timeline_and_texts_do_not(language: str) -> None:
    email = render("family_request_received", language, "email", FULL_CONTEXT).body
    assert "https://ehc.example/family/TOKEN" in email
    text = render("family_request_received", language, "sms", FULL_CONTEXT).body
    assert "/family/" not in text  # texts stay within 3 fragments; the link is in emails
