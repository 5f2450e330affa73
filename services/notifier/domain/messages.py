"""Plain-English (and Welsh) messages: which templates exist, what each may use, how they render.

``render(template, language, channel_kind, context)`` gives a RenderedMessage: a subject (emails),
the text body, and the personalisation to send to GOV.UK Notify (which renders its own copy of the
template from ``((placeholders))`` of the same names, or from ``((body))`` if a council prefers one
pass-through template).

Guarantees, checked here at every render rather than trusted to template authors:

* a template only sees the fields its TemplateSpec declares; a missing required field, an unknown
  template or a typo in a template is a TemplateRenderError naming what is wrong (StrictUndefined);
* a text to a family only sees FAMILY_SMS_FIELDS (dates, the council's name, links, the phone
  numbers of services, and a rule id that becomes a fixed phrase): never a child's name, a health
  detail or a case reference, whatever the caller passes in;
* those fields have maximum lengths, and every text is at most 3 SMS fragments (459 GSM
  characters, or 201 when a character outside GSM, such as a Welsh circumflex, forces UCS-2).

Templates live in ``templates/<language>/<name>.<sms|email>.txt``; an email defines
``{% block subject %}`` and ``{% block body %}``. They render in a sandbox, without HTML escaping
(they are text; the SMTP adapter escapes when it builds the HTML part).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, UndefinedError, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from shared.family_duties import FAMILY_DUTIES  # shared with the web front's family timeline

Language = Literal["en", "cy"]
ChannelKind = Literal["sms", "email"]
Audience = Literal["caseworker", "family", "manager"]

LANGUAGES: tuple[Language, ...] = ("en", "cy")
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("sms", "email")
TEMPLATES_DIR = Path(__file__).parent / "templates"
LOCAL_TZ = ZoneInfo("Europe/London")

MAX_SMS_FRAGMENTS = 3
GSM_SINGLE, GSM_MULTI = 160, 153  # characters in one fragment / in each part of a long text
UCS2_SINGLE, UCS2_MULTI = 70, 67

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class TemplateRenderError(ValueError):
    """A message could not be rendered; the text says which template and why (no field values)."""


class UnknownTemplate(TemplateRenderError):
    pass


class MissingTemplateVariable(TemplateRenderError):
    pass


class FieldTooLong(TemplateRenderError):
    pass


class SmsTooLong(TemplateRenderError):
    pass


# --------------------------------------------------------------------------------------------
# What each template may use
# --------------------------------------------------------------------------------------------

#: Everything a text to a family may contain: dates, the council's name, links, the phone numbers of
#: services, a rule id (a closed vocabulary, shown as a fixed phrase) and the decision's closed words.
#: Nothing about the child (its first name, where a council allows it, goes in emails only).
FAMILY_SMS_FIELDS: frozenset[str] = frozenset(
    {
        "council_name", "info_url", "link", "council_phone", "sendiass_contact", "rule_id", "decision", "outcome",
        "due_on", "received_on", "comments_by", "appeal_by", "mediation_by", "final_due_on", "review_due_on",
        "previous_due_on", "change_reason",
    }
)

#: The longest values a council may configure so that every English text to a family fits one SMS
#: fragment (a decision that carries the family's own deadlines two; Welsh one more): checked at
#: start-up (bootstrap.configuration_problems) and by the template tests at these lengths.
FIELD_MAX_LENGTHS: Mapping[str, int] = {
    "council_name": 30,
    "link": 40,  # a short link: a web front address of 25 characters, /f/ and a 12-character code
    "council_phone": 15,
    "sendiass_contact": 40,
}

#: Longer than this, a field is refused at render time whatever the settings said (a backstop: every
#: text then still fits in MAX_SMS_FRAGMENTS).
FIELD_HARD_MAX_LENGTHS: Mapping[str, int] = {
    "council_name": 50,
    "info_url": 80,
    "link": 80,
    "council_phone": 30,
    "sendiass_contact": 60,
}

_FAMILY_COMMON_OPTIONAL = {"council_phone", "sendiass_contact", "recipient_name", "child_first_name", "info_url",
                           "timeline_url"}
_FAMILY = {"council_name", "link"}
_APPEAL = {"appeal_by", "mediation_by"}


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    audience: Audience
    kinds: frozenset[ChannelKind]
    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    title: str = ""  # what the message is, in a few words, for staff ("request received")
    title_cy: str = ""
    sms_fragments: int = 1  # the most an English text may take at FIELD_MAX_LENGTHS (Welsh: one more)

    @property
    def fields(self) -> frozenset[str]:
        return self.required | self.optional


def _spec(
    name: str,
    audience: Audience,
    kinds: set[ChannelKind],
    required: set[str],
    optional: set[str],
    title: tuple[str, str],
    sms_fragments: int = 1,
) -> TemplateSpec:
    if audience != "family":  # staff see the council's own case reference (decrypted just before rendering)
        optional = optional | STAFF_CASE_FIELDS
    return TemplateSpec(name, audience, frozenset(kinds), frozenset(required), frozenset(optional), *title,
                        sms_fragments=sms_fragments)


#: The council's own case reference: ``case_reference`` (one case) or ``case_references`` (case_id ->
#: reference, for lists). Kept encrypted in stored contexts (``*_encrypted``); never in a family's message.
STAFF_CASE_FIELDS = frozenset({"case_reference", "case_references"})


_DEADLINE = {"case_id", "rule_id", "due_on", "case_url"}
_SMS_EMAIL: set[ChannelKind] = {"sms", "email"}
_EMAIL: set[ChannelKind] = {"email"}

_CASEWORKER_OPTIONAL = {"caseworker_name", "period_text", "flags"}

TEMPLATES: Mapping[str, TemplateSpec] = {
    s.name: s
    for s in (
        # to the caseworker
        _spec(
            "caseworker_reminder", "caseworker", _EMAIL,
            _DEADLINE | {"working_days_left", "legal_source"}, _CASEWORKER_OPTIONAL,
            ("deadline reminder", "nodyn atgoffa am derfyn amser"),
        ),
        _spec(
            "caseworker_new_deadline", "caseworker", _EMAIL,
            _DEADLINE | {"legal_source"}, _CASEWORKER_OPTIONAL | {"working_days_left"},
            ("new deadline", "terfyn amser newydd"),
        ),
        _spec(
            "caseworker_exception_nudge", "caseworker", _EMAIL,
            _DEADLINE | {"exception"}, {"caseworker_name", "legal_source"},
            ("exception recorded", "eithriad wedi'i gofnodi"),
        ),
        _spec(
            "caseworker_breach", "caseworker", _EMAIL,
            _DEADLINE | {"legal_source"}, _CASEWORKER_OPTIONAL | {"working_days_overdue"},
            ("deadline missed alert", "rhybudd terfyn amser wedi'i fethu"),
        ),
        _spec(
            "caseworker_daily_digest", "caseworker", _EMAIL,
            {"digest_date", "overdue", "due_soon"},
            {"caseworker_name", "cases_url", "new", "exceptions", "totals", "not_shown", "data_to_check"},
            ("daily list of deadlines", "rhestr ddyddiol o derfynau amser"),
        ),
        _spec(
            "caseworker_date_changed", "caseworker", _EMAIL,
            _DEADLINE | {"previous_due_on", "legal_source"},
            _CASEWORKER_OPTIONAL | {"change_reason", "change_detail"},
            ("deadline date changed", "dyddiad terfyn amser wedi newid"),
        ),
        _spec(
            "caseworker_delivery_failed", "caseworker", _EMAIL,
            {"case_id", "failed_template", "channel_kind", "reason", "case_url"},
            {"caseworker_name", "rule_id", "due_on"},
            ("message not delivered", "neges heb ei danfon"),
        ),
        _spec(
            "caseworker_family_message", "caseworker", _EMAIL,
            {"case_id", "case_url", "topic_words"}, {"caseworker_name"},
            ("message from a family", "neges gan deulu"),
        ),
        # to the family
        _spec(
            "family_request_received", "family", _SMS_EMAIL,
            _FAMILY | {"due_on"}, _FAMILY_COMMON_OPTIONAL | {"received_on"},
            ("request received", "cais wedi dod i law"),
        ),
        _spec(
            "family_decision_made", "family", _SMS_EMAIL,
            set(_FAMILY), _FAMILY_COMMON_OPTIONAL | _APPEAL | {"decision", "final_due_on"},
            ("assessment decision made", "penderfyniad am asesiad"), sms_fragments=2,
        ),
        _spec(
            "family_review_decision", "family", _SMS_EMAIL,
            set(_FAMILY), _FAMILY_COMMON_OPTIONAL | _APPEAL | {"outcome"},
            ("annual review decision", "penderfyniad yr adolygiad blynyddol"), sms_fragments=2,
        ),
        _spec(
            "family_draft_plan_issued", "family", _SMS_EMAIL,
            _FAMILY | {"comments_by"}, _FAMILY_COMMON_OPTIONAL | {"final_due_on"},
            ("draft plan issued", "cynllun drafft wedi'i anfon"),
        ),
        _spec(
            "family_plan_issued", "family", _SMS_EMAIL,
            set(_FAMILY), _FAMILY_COMMON_OPTIONAL | _APPEAL | {"review_due_on"},
            ("final plan issued", "cynllun terfynol wedi'i gyhoeddi"),
        ),
        _spec(
            "family_review_due", "family", _SMS_EMAIL,
            _FAMILY | {"due_on"}, set(_FAMILY_COMMON_OPTIONAL),
            ("annual review due", "adolygiad blynyddol yn ddyledus"),
        ),
        _spec(
            "family_deadline_reminder", "family", _SMS_EMAIL,
            _FAMILY | {"rule_id", "due_on"}, set(_FAMILY_COMMON_OPTIONAL),
            ("reminder of the family's own deadline", "nodyn atgoffa am derfyn amser y teulu"),
        ),
        _spec(
            "family_deadline_missed", "family", _SMS_EMAIL,
            _FAMILY | {"rule_id", "due_on", "council_phone", "sendiass_contact"},
            {"recipient_name", "child_first_name", "info_url", "timeline_url"},
            ("legal deadline missed", "terfyn amser cyfreithiol wedi'i fethu"),
        ),
        _spec(
            "family_date_changed", "family", _SMS_EMAIL,
            _FAMILY | {"rule_id", "due_on", "previous_due_on"}, _FAMILY_COMMON_OPTIONAL | {"change_reason"},
            ("deadline date changed", "dyddiad terfyn amser wedi newid"),
        ),
        # to managers
        _spec(
            "manager_breach", "manager", _SMS_EMAIL,
            set(_DEADLINE), {"recipient_name", "scope_name", "legal_source", "working_days_overdue", "breaches_url"},
            ("deadline missed alert", "rhybudd terfyn amser wedi'i fethu"),
        ),
        _spec(
            "manager_breach_rollup", "manager", _SMS_EMAIL,
            {"digest_date", "scope_name", "breaches", "breach_count"}, {"recipient_name", "breaches_url"},
            ("missed deadlines overnight", "terfynau amser a fethwyd dros nos"),
        ),
        _spec(
            "manager_daily_at_risk", "manager", _EMAIL,
            {"digest_date", "scope_name", "overdue", "due_soon"},
            {"recipient_name", "at_risk_url", "overdue_count", "due_soon_count"},
            ("daily at-risk list", "rhestr ddyddiol o achosion mewn perygl"),
        ),
        _spec(
            "manager_weekly_summary", "manager", _EMAIL,
            {"week_start", "week_end", "scope_name", "counts"},
            {"recipient_name", "oldest_overdue", "timeliness", "report_url"},
            ("weekly summary", "crynodeb wythnosol"),
        ),
    )
}

# --------------------------------------------------------------------------------------------
# Fixed wording: rules, months, days
# --------------------------------------------------------------------------------------------


#: Short names of every rule (law/england.md) for staff messages. TODO(review): Welsh by a Welsh speaker.
RULE_NAMES: Mapping[str, Mapping[Language, str]] = {
    "assessment.decision": {"en": "Decide whether to assess", "cy": "Penderfynu a ddylid asesu"},
    "assessment.advice": {"en": "Advice for the needs assessment", "cy": "Cyngor ar gyfer yr asesiad o anghenion"},
    "assessment.plan_decision": {"en": "Decide whether to issue an EHC plan",
                                 "cy": "Penderfynu a ddylid cyhoeddi cynllun EHC"},
    "plan.final": {"en": "Issue the final EHC plan (20 weeks)", "cy": "Cyhoeddi'r cynllun EHC terfynol (20 wythnos)"},
    "draft.representations": {"en": "Family's comments on the draft plan",
                              "cy": "Sylwadau'r teulu ar y cynllun drafft"},
    "draft.consultation_response": {"en": "Reply to the consultation on the school or college",
                                    "cy": "Ymateb i'r ymgynghoriad ar yr ysgol neu'r coleg"},
    "review.annual": {"en": "Annual review", "cy": "Adolygiad blynyddol"},
    "review.meeting_notice": {"en": "Notice of the review meeting", "cy": "Rhybudd o'r cyfarfod adolygu"},
    "review.advice_circulation": {"en": "Send out advice before the review meeting",
                                  "cy": "Anfon cyngor cyn y cyfarfod adolygu"},
    "review.report": {"en": "Review report", "cy": "Adroddiad yr adolygiad"},
    "review.decision": {"en": "Decision after the review", "cy": "Penderfyniad wedi'r adolygiad"},
    "review.under5": {"en": "Consider a review (child under 5)", "cy": "Ystyried adolygiad (plentyn dan 5)"},
    "amendment.representations": {"en": "Family's comments on the proposed amendments",
                                  "cy": "Sylwadau'r teulu ar y diwygiadau arfaethedig"},
    "amendment.final": {"en": "Amended plan or decision not to amend",
                        "cy": "Cynllun diwygiedig neu benderfyniad i beidio diwygio"},
    "phase_transfer.review": {"en": "Review and amend for the phase transfer",
                              "cy": "Adolygu a diwygio ar gyfer y trosglwyddo rhwng cyfnodau"},
    "reassessment.decision": {"en": "Decide whether to reassess", "cy": "Penderfynu a ddylid ailasesu"},
    "reassessment.final": {"en": "Finish the reassessment", "cy": "Cwblhau'r ailasesiad"},
    "transfer.send_plan": {"en": "Send the plan to the new council", "cy": "Anfon y cynllun i'r cyngor newydd"},
    "transfer.notify_family": {"en": "Tell the family after the transfer",
                               "cy": "Dweud wrth y teulu wedi'r trosglwyddo"},
    "transfer.review": {"en": "Review after the transfer", "cy": "Adolygiad wedi'r trosglwyddo"},
    "cease.appeal_window": {"en": "Keep the plan until the appeal window closes",
                            "cy": "Cadw'r cynllun nes i'r cyfnod apelio ddod i ben"},
    "mediation.adviser_contact": {"en": "Family's time to contact a mediation adviser",
                                  "cy": "Amser y teulu i gysylltu gydag ymgynghorydd cyfryngu"},
    "mediation.certificate_declined": {"en": "Mediation certificate (mediation not wanted)",
                                       "cy": "Tystysgrif cyfryngu (dim cyfryngu)"},
    "mediation.health_notice": {"en": "Tell the health commissioners about mediation",
                                "cy": "Dweud wrth y comisiynwyr iechyd am y cyfryngu"},
    "mediation.arrange": {"en": "Arrange mediation", "cy": "Trefnu cyfryngu"},
    "mediation.certificate": {"en": "Mediation certificate", "cy": "Tystysgrif cyfryngu"},
    "mediation.agreement": {"en": "Act on the mediation agreement", "cy": "Gweithredu'r cytundeb cyfryngu"},
    "appeal.deadline": {"en": "Family's deadline to appeal", "cy": "Dyddiad cau'r teulu i apelio"},
    "appeal.la_response": {"en": "Council's response to the appeal", "cy": "Ymateb y cyngor i'r apel"},
    "tribunal.assess_notify": {"en": "Tribunal order: confirm the assessment",
                               "cy": "Gorchymyn tribiwnlys: cadarnhau'r asesiad"},
    "tribunal.assess_no_plan": {"en": "Tribunal order: decide no plan after assessing",
                                "cy": "Gorchymyn tribiwnlys: penderfynu dim cynllun wedi asesu"},
    "tribunal.assess_final": {"en": "Tribunal order: plan after assessing",
                              "cy": "Gorchymyn tribiwnlys: cynllun wedi asesu"},
    "tribunal.plan_draft": {"en": "Tribunal order: draft plan", "cy": "Gorchymyn tribiwnlys: cynllun drafft"},
    "tribunal.plan_final": {"en": "Tribunal order: final plan", "cy": "Gorchymyn tribiwnlys: cynllun terfynol"},
    "tribunal.amend": {"en": "Tribunal order: amend the plan", "cy": "Gorchymyn tribiwnlys: diwygio'r cynllun"},
    "tribunal.school_name": {"en": "Tribunal order: change the school named",
                             "cy": "Gorchymyn tribiwnlys: newid yr ysgol a enwir"},
    "tribunal.continue": {"en": "Tribunal order: keep the plan", "cy": "Gorchymyn tribiwnlys: cadw'r cynllun"},
    "tribunal.recommendation_response": {"en": "Tribunal recommendation: respond",
                                         "cy": "Argymhelliad tribiwnlys: ymateb"},
    "unopposed.assess_notify": {"en": "Unopposed appeal: confirm the assessment",
                                "cy": "Apel heb ei gwrthwynebu: cadarnhau'r asesiad"},
    "unopposed.assess_no_plan": {"en": "Unopposed appeal: decide no plan after assessing",
                                 "cy": "Apel heb ei gwrthwynebu: penderfynu dim cynllun wedi asesu"},
    "unopposed.assess_final": {"en": "Unopposed appeal: plan after assessing",
                               "cy": "Apel heb ei gwrthwynebu: cynllun wedi asesu"},
    "unopposed.amend": {"en": "Unopposed appeal: amend the plan",
                        "cy": "Apel heb ei gwrthwynebu: diwygio'r cynllun"},
}

#: The exceptions of law/england.md section B, in plain words. TODO(review): Welsh by a Welsh speaker.
EXCEPTION_NAMES: Mapping[str, Mapping[Language, str]] = {
    "E1": {"en": "school or college closure (E1)", "cy": "ysgol neu goleg ar gau (E1)"},
    "E2": {"en": "early years provider closure (E2)", "cy": "darparwr blynyddoedd cynnar ar gau (E2)"},
    "E3": {"en": "exceptional personal circumstances (E3)", "cy": "amgylchiadau personol eithriadol (E3)"},
    "E4": {"en": "absence from the area (E4)", "cy": "absennol o'r ardal (E4)"},
    "E5": {"en": "missed appointment (E5)", "cy": "apwyntiad wedi'i golli (E5)"},
}

_MONTHS: Mapping[Language, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "cy": ("Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin", "Gorffennaf", "Awst", "Medi",
           "Hydref", "Tachwedd", "Rhagfyr"),
}
_WEEKDAYS: Mapping[Language, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "cy": ("Dydd Llun", "Dydd Mawrth", "Dydd Mercher", "Dydd Iau", "Dydd Gwener", "Dydd Sadwrn", "Dydd Sul"),
}

# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(LOCAL_TZ) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise TypeError(f"not a date: {type(value).__name__}")


def format_date(value: Any, language: str = "en", weekday: bool = False) -> str:
    """GOV.UK style: ``14 March 2025``, or ``Friday 14 March 2025``; Welsh: ``Dydd Gwener 14 Mawrth 2025``."""
    lang: Language = "cy" if language == "cy" else "en"
    day = _as_date(value)
    text = f"{day.day} {_MONTHS[lang][day.month - 1]} {day.year}"
    return f"{_WEEKDAYS[lang][day.weekday()]} {text}" if weekday else text


def _language(ctx: Context) -> str:
    return str(ctx.get("language", "en"))


@pass_context
def _date_filter(ctx: Context, value: Any) -> str:
    return format_date(value, _language(ctx))


@pass_context
def _day_date_filter(ctx: Context, value: Any) -> str:
    return format_date(value, _language(ctx), weekday=True)


@pass_context
def _working_days_filter(ctx: Context, value: Any) -> str:
    n = int(value)
    if _language(ctx) == "cy":  # Welsh keeps the noun singular after a numeral
        return f"{n} diwrnod gwaith"
    return f"{n} working day" if n == 1 else f"{n} working days"


def duty_wording(rule_id: Any, language: str) -> str:
    """What the council must do under ``rule_id``, worded for families; an error for other rules."""
    phrases = FAMILY_DUTIES.get(str(rule_id))
    if phrases is None:
        raise TemplateRenderError(f"there is no wording for families for rule {rule_id!r}")
    return phrases["cy" if language == "cy" else "en"]


def rule_name(rule_id: Any, language: str) -> str:
    """A short name of a rule for staff; the rule id itself when the rule is not known here."""
    names = RULE_NAMES.get(str(rule_id))
    return names["cy" if language == "cy" else "en"] if names else str(rule_id)


@pass_context
def _duty_filter(ctx: Context, rule_id: Any) -> str:
    return duty_wording(rule_id, _language(ctx))


@pass_context
def _rule_name_filter(ctx: Context, rule_id: Any) -> str:
    return rule_name(rule_id, _language(ctx))


@pass_context
def _exception_name_filter(ctx: Context, code: Any) -> str:
    names = EXCEPTION_NAMES.get(str(code))
    return names["cy" if _language(ctx) == "cy" else "en"] if names else str(code)


_AUDIENCES_CY: Mapping[str, str] = {"caseworker": "gweithiwr achos", "family": "teulu", "manager": "rheolwr"}


@pass_context
def _template_title(ctx: Context, name: Any) -> str:
    spec = TEMPLATES.get(str(name))
    if spec is None:
        return str(name)
    if _language(ctx) == "cy":
        return f"{spec.title_cy} ({_AUDIENCES_CY[spec.audience]})"
    return f"{spec.title} ({spec.audience})"


@pass_context
def _case_filter(ctx: Context, case_id: Any) -> str:
    """How staff know a case: the council's own reference when the contacts gave one, else the id."""
    references = ctx.get("case_references") or {}
    reference = references.get(str(case_id)) if isinstance(references, Mapping) else None
    if reference is None and str(case_id) == str(ctx.get("case_id")):
        reference = ctx.get("case_reference")
    return str(reference or case_id)


def _capfirst(value: Any) -> str:
    text = str(value)
    return text[:1].upper() + text[1:]


def _build_environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters.update(
        date=_date_filter,
        day_date=_day_date_filter,
        working_days=_working_days_filter,
        duty=_duty_filter,
        rule_name=_rule_name_filter,
        exception_name=_exception_name_filter,
        template_title=_template_title,
        capfirst=_capfirst,
        case=_case_filter,
    )
    return env


ENVIRONMENT = _build_environment()

# --------------------------------------------------------------------------------------------
# SMS length
# --------------------------------------------------------------------------------------------

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€")  # two characters each


@dataclass(frozen=True)
class SmsLength:
    encoding: Literal["GSM", "UCS-2"]
    characters: int  # in the encoding's units: an extended GSM character counts 2
    fragments: int


def sms_length(text: str) -> SmsLength:
    """How a text is billed: GSM 03.38 (160, or 153 per part) unless a character forces UCS-2 (70/67)."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        units = len(text) + sum(1 for ch in text if ch in GSM_EXTENDED)
        single, multi, encoding = GSM_SINGLE, GSM_MULTI, "GSM"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = UCS2_SINGLE, UCS2_MULTI, "UCS-2"
    fragments = 1 if units <= single else math.ceil(units / multi)
    return SmsLength(encoding, units, fragments)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Render
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedMessage:
    subject: str  # "" for a text
    body: str
    personalisation: Mapping[str, str] = field(default_factory=dict)


def template_path(template: str, language: str, channel_kind: str) -> str:
    return f"{language}/{template}.{channel_kind}.txt"


def allowed_fields(spec: TemplateSpec, channel_kind: str) -> frozenset[str]:
    """The fields a template may see: its spec's, narrowed to FAMILY_SMS_FIELDS for a family text."""
    if spec.audience == "family" and channel_kind == "sms":
        return spec.fields & FAMILY_SMS_FIELDS
    return spec.fields


def _where(template: str, language: str, channel_kind: str) -> str:
    return f"template {template} ({language}, {channel_kind})"


def _tidy(text: str, channel_kind: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    if channel_kind == "sms":
        # template files wrap lines for reading; a text keeps only its paragraph breaks
        paragraphs = re.split(r"\n\s*\n", "\n".join(lines))
        return "\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


#: Fields holding a date (a date, an aware datetime or an ISO string), shown in words everywhere.
DATE_FIELDS = frozenset(
    {"due_on", "received_on", "comments_by", "appeal_by", "mediation_by", "final_due_on", "review_due_on",
     "digest_date", "previous_due_on",
     "week_start", "week_end"}
)


def _personalisation_value(name: str, value: Any, language: str) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"  # what Notify's ((field??conditional)) text expects
    if isinstance(value, date) or name in DATE_FIELDS:
        return format_date(value, language)
    if isinstance(value, int | float | str):
        return str(value)
    return None  # lists and mappings (digests) have no Notify placeholder


def _personalisation(
    spec: TemplateSpec, fields: frozenset[str], values: Mapping[str, Any], language: str, where: str
) -> dict[str, str]:
    """The fields as Notify placeholders: strings, dates in words; lists and mappings left out."""
    try:
        personalisation = {
            name: text
            for name in sorted(fields)
            if (text := _personalisation_value(name, values.get(name), language)) is not None
        }
        if values.get("rule_id") is not None:
            personalisation["rule_name"] = rule_name(values["rule_id"], language)
            if spec.audience == "family" and str(values["rule_id"]) in FAMILY_DUTIES:
                personalisation["duty"] = duty_wording(values["rule_id"], language)
    except (TypeError, ValueError) as exc:  # TemplateRenderError is a ValueError
        raise TemplateRenderError(f"{where}: {exc}") from None
    return personalisation


def _validate(spec: TemplateSpec, channel_kind: str, values: Mapping[str, Any], where: str) -> None:
    missing = sorted(f for f in spec.required if values.get(f) is None or values.get(f) == "")
    if missing:
        raise MissingTemplateVariable(f"{where} needs {', '.join(missing)}")
    if spec.audience == "family" and channel_kind == "sms":
        for name, limit in FIELD_HARD_MAX_LENGTHS.items():
            value = values.get(name)
            if value is not None and len(str(value)) > limit:
                raise FieldTooLong(f"{where}: {name} is longer than {limit} characters")


def render(template: str, language: str, channel_kind: str, context: Mapping[str, Any]) -> RenderedMessage:
    """Render one message; TemplateRenderError (with a clear reason) if it cannot be rendered."""
    where = _where(template, language, channel_kind)
    spec = TEMPLATES.get(template)
    if spec is None:
        raise UnknownTemplate(f"unknown template {template!r}; known: {', '.join(sorted(TEMPLATES))}")
    if language not in LANGUAGES:
        raise UnknownTemplate(f"{where}: language must be one of {', '.join(LANGUAGES)}")
    if channel_kind not in spec.kinds:
        raise UnknownTemplate(f"{where}: {template} is sent by {' or '.join(sorted(spec.kinds))} only")
    fields = allowed_fields(spec, channel_kind)
    values: dict[str, Any] = {name: context.get(name) for name in fields}
    _validate(spec, channel_kind, values, where)
    values["language"] = language
    try:
        tmpl = ENVIRONMENT.get_template(template_path(template, language, channel_kind))
        if channel_kind == "email":
            missing_blocks = {"subject", "body"} - set(tmpl.blocks)
            if missing_blocks:
                raise UnknownTemplate(f"{where}: the email template has no block {', '.join(sorted(missing_blocks))}")
            subject = " ".join("".join(tmpl.blocks["subject"](tmpl.new_context(values))).split())
            body = "".join(tmpl.blocks["body"](tmpl.new_context(values)))
        else:
            subject, body = "", tmpl.render(values)
    except TemplateNotFound as exc:
        raise UnknownTemplate(f"{where}: the template file {exc.name} is missing") from None
    except UnknownTemplate:
        raise
    except UndefinedError as exc:
        raise MissingTemplateVariable(f"{where}: {exc.message}") from None
    except TemplateRenderError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    except (TemplateError, TypeError, ValueError) as exc:
        raise TemplateRenderError(f"{where}: {type(exc).__name__}: {exc}") from None
    body = _tidy(body, channel_kind)
    if channel_kind == "sms":
        length = sms_length(body)
        if length.fragments > MAX_SMS_FRAGMENTS:
            raise SmsTooLong(
                f"{where} is {length.characters} {length.encoding} characters, "
                f"{length.fragments} fragments; at most {MAX_SMS_FRAGMENTS}"
            )
    personalisation = _personalisation(spec, fields, values, language, where)
    if subject:
        personalisation["subject"] = subject
    personalisation["body"] = body
    return RenderedMessage(subject=subject, body=body, personalisation=personalisation)


__all__ = [
    "CHANNEL_KINDS",
    "DATE_FIELDS",
    "ENVIRONMENT",
    "EXCEPTION_NAMES",
    "FAMILY_DUTIES",
    "FAMILY_SMS_FIELDS",
    "FIELD_HARD_MAX_LENGTHS",
    "FIELD_MAX_LENGTHS",
    "FieldTooLong",
    "LANGUAGES",
    "MAX_SMS_FRAGMENTS",
    "MissingTemplateVariable",
    "RULE_NAMES",
    "RenderedMessage",
    "SmsLength",
    "STAFF_CASE_FIELDS",
    "SmsTooLong",
    "TEMPLATES",
    "TemplateRenderError",
    "TemplateSpec",
    "UnknownTemplate",
    "allowed_fields",
    "duty_wording",
    "format_date",
    "render",
    "rule_name",
    "sms_length",
    "template_path",
]
