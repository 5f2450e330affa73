"""What the pages show, as pure functions of the services' read models (no I/O here).

Staff see every deadline with its explanation; families see their child's timeline in plain
words: what has happened, what the council must do next and by when, and which of the council's
deadlines were met or missed. Families never see other people's duties as theirs to meet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.family_duties import FAMILY_DUTIES, Language

OPEN = ("open", "due_soon")
LONDON = ZoneInfo("Europe/London")


def known_as(names: Mapping[str, str], ident: str | None, kind: str) -> str:
    """The name staff know a team or area by (settings ``team_names`` / ``area_names``), else
    "<Kind> <id>"; empty when there is none."""
    if not ident:
        return ""
    return names.get(ident) or f"{kind} {ident}"


def london_day(now: datetime) -> date:
    return now.astimezone(LONDON).date()


def london_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, LONDON).strftime("%H:%M on %-d %B %Y")

#: status -> (label, GOV.UK tag colour class)
STATUS_TAGS: Mapping[str, tuple[str, str]] = {
    "open": ("Open", "govuk-tag--blue"),
    "due_soon": ("Due soon", "govuk-tag--yellow"),
    "overdue": ("Overdue", "govuk-tag--red"),
    "met": ("Met", "govuk-tag--green"),
    "met_late": ("Met late", "govuk-tag--orange"),
    "breached": ("Missed", "govuk-tag--red"),
    "exception": ("Exception", "govuk-tag--purple"),
    "cancelled": ("Cancelled", "govuk-tag--grey"),
}

RESPONSIBLE = {"la": "The council", "institution": "The school or college", "family": "The family",
               "body_asked": "The body asked for advice", "la_or_commissioning_body":
               "The council or the health commissioning body", "mediation_adviser": "The mediation adviser",
               "mediator": "The mediator", "new_la": "The new council", "old_la": "The previous council",
               "school_head_or_la": "The head teacher or the council"}

EXCEPTIONS: Mapping[str, str] = {
    "E1": "E1: the school or college was closed (Regulation 10(4)(a))",
    "E2": "E2: the early years setting was closed (Regulation 10(4)(b))",
    "E3": "E3: exceptional personal circumstances of the child or family (Regulations 10(4)(c), 8(2)(a))",
    "E4": "E4: the child or family was away from the area (Regulations 10(4)(d), 8(2)(b))",
    "E5": "E5: a missed appointment (Regulation 8(2)(c))",
}

FAMILY_TOPICS: Mapping[str, Mapping[str, str]] = {
    "question": {"en": "I have a question", "cy": "Mae gennyf gwestiwn"},
    "date_wrong": {"en": "A date here is wrong", "cy": "Mae dyddiad yma'n anghywir"},
    "not_received": {"en": "We never received something (for example the draft plan)",
                     "cy": "Ni chawsom rywbeth (er enghraifft y cynllun drafft)"},
    "other": {"en": "Something else", "cy": "Rhywbeth arall"},
}

# What happened, in plain words, for staff and families. TODO(review): Welsh to be checked by a Welsh speaker.
EVENT_WORDS: Mapping[str, Mapping[str, str]] = {
    "ehc.request.received": {"en": "The council received the request for an EHC needs assessment",
                             "cy": "Cafodd y cyngor y cais am asesiad o anghenion EHC"},
    "ehc.assessment.decided": {"en": "The council decided whether to assess",
                               "cy": "Penderfynodd y cyngor a fydd yn asesu"},
    "ehc.advice.requested": {"en": "The council asked for advice", "cy": "Gofynnodd y cyngor am gyngor"},
    "ehc.advice.received": {"en": "Advice was received", "cy": "Daeth cyngor i law"},
    "ehc.plan.not_issued": {"en": "The council decided not to issue an EHC plan",
                            "cy": "Penderfynodd y cyngor beidio a chyhoeddi cynllun EHC"},
    "ehc.draft_plan.issued": {"en": "The draft EHC plan was sent to you", "cy": "Anfonwyd y cynllun EHC drafft atoch"},
    "ehc.consultation.sent": {"en": "The council asked a school or college about naming it",
                              "cy": "Gofynnodd y cyngor i ysgol neu goleg am ei henwi"},
    "ehc.consultation.responded": {"en": "A school or college replied", "cy": "Atebodd ysgol neu goleg"},
    "ehc.plan.issued": {"en": "The final EHC plan was issued", "cy": "Cyhoeddwyd y cynllun EHC terfynol"},
    "ehc.review.meeting_scheduled": {"en": "A review meeting was arranged", "cy": "Trefnwyd cyfarfod adolygu"},
    "ehc.review.meeting_held": {"en": "The review meeting took place", "cy": "Cynhaliwyd y cyfarfod adolygu"},
    "ehc.review.report_sent": {"en": "The review report was sent", "cy": "Anfonwyd adroddiad yr adolygiad"},
    "ehc.review.decision_issued": {"en": "The council told you its decision after the review",
                                   "cy": "Dywedodd y cyngor ei benderfyniad wedi'r adolygiad"},
    "ehc.amendment.proposed": {"en": "Changes to the plan were proposed", "cy": "Cynigiwyd newidiadau i'r cynllun"},
    "ehc.plan.amended": {"en": "The amended plan was issued", "cy": "Cyhoeddwyd y cynllun diwygiedig"},
    "ehc.case.assigned": {"en": "A caseworker was assigned", "cy": "Penodwyd gweithiwr achos"},
    "ehc.case.closed": {"en": "The case was closed", "cy": "Caewyd yr achos"},
    "ehc.exception.recorded": {"en": "An exception to a time limit was recorded",
                               "cy": "Cofnodwyd eithriad i derfyn amser"},
    "ehc.exception.withdrawn": {"en": "An exception was withdrawn", "cy": "Tynnwyd eithriad yn ol"},
    "ehc.family.message": {"en": "You sent the council a message", "cy": "Anfonoch neges at y cyngor"},
    "ehc.mediation.requested": {"en": "Mediation was requested", "cy": "Gofynnwyd am gyfryngu"},
    "ehc.appeal.registered": {"en": "An appeal was registered with the tribunal",
                              "cy": "Cofrestrwyd apel gyda'r tribiwnlys"},
}

#: Events a family is told about on its timeline (internal bookkeeping stays off it).
FAMILY_EVENTS = frozenset(EVENT_WORDS) - {"ehc.case.assigned", "ehc.exception.withdrawn", "ehc.advice.requested",
                                          "ehc.consultation.sent", "ehc.consultation.responded"}


def effective_status(status: str, due_on: date, today: date) -> str:
    """``overdue`` for an open deadline past its due date that the breach timer has not marked yet."""
    return "overdue" if status in OPEN and due_on < today else status


def status_tag(status: str, due_on: date, today: date) -> tuple[str, str]:
    return STATUS_TAGS.get(effective_status(status, due_on, today), (status, "govuk-tag--grey"))


def words_for_event(event_type: str, language: str = "en") -> str:
    words = EVENT_WORDS.get(event_type)
    if words is None:
        return event_type.removeprefix("ehc.").replace(".", " ").replace("_", " ").capitalize()
    return words.get(language) or words["en"]


def event_details(event_type: str, data: Mapping[str, Any]) -> str:
    """A short line of the event's data for staff (no free text of the family's; reasons are staff's)."""
    shown = {k: v for k, v in data.items() if k not in ("occurred_on",) and v not in (None, "", [])}
    if event_type == "ehc.exception.recorded":
        rules = ", ".join(shown.get("rule_ids") or []) or "every open council deadline"
        return f"{shown.get('exception')} on {rules}" + (f": {shown['reason']}" if shown.get("reason") else "")
    return ", ".join(f"{k.replace('_', ' ')}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in sorted(shown.items()))


@dataclass(frozen=True)
class DeadlineRow:
    deadline_id: str
    rule_id: str
    title: str
    due_on: date
    status: str
    tag: tuple[str, str]
    responsible: str
    kind: str
    legal_source: str
    trigger_event_id: str
    trigger_date: str
    period_text: str
    flags: list[str]
    exception: str | None
    exception_reason: str | None
    exception_event_id: str | None
    completed_on: str | None
    ruleset_version: str

    @property
    def can_take_exception(self) -> bool:
        return self.status in OPEN and self.kind == "duty"


def deadline_rows(items: Iterable[Mapping[str, Any]], today: date) -> list[DeadlineRow]:
    rows = []
    for d in items:
        e = d.get("explanation") or {}
        due = d["due_on"] if isinstance(d["due_on"], date) else date.fromisoformat(str(d["due_on"]))
        rows.append(DeadlineRow(
            d["deadline_id"], d["rule_id"], e.get("title") or d["rule_id"], due, d["status"],
            status_tag(d["status"], due, today), RESPONSIBLE.get(d["responsible"], d["responsible"]),
            d.get("kind") or e.get("kind") or "duty", e.get("legal_source") or "", e.get("trigger_event_id") or "",
            e.get("trigger_date") or "", e.get("period_text") or "", list(e.get("flags") or []), e.get("exception"),
            e.get("exception_reason"), e.get("exception_event_id"), e.get("completed_on"),
            e.get("ruleset_version") or ""))
    return sorted(rows, key=lambda r: (r.status not in OPEN, r.due_on, r.rule_id))


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    team_id: str | None
    caseworker_id: str | None
    next_due_on: date | None
    overdue: int
    due_soon: int
    exceptions: int
    open: int

    @property
    def tags(self) -> list[tuple[str, str]]:
        tags = []
        if self.overdue:
            tags.append((f"{self.overdue} overdue", "govuk-tag--red"))
        if self.due_soon:
            tags.append((f"{self.due_soon} due soon", "govuk-tag--yellow"))
        if self.exceptions:
            tags.append((f"{self.exceptions} exception{'s' if self.exceptions > 1 else ''}", "govuk-tag--purple"))
        return tags


def case_rows(items: Iterable[Mapping[str, Any]]) -> list[CaseRow]:
    rows = [CaseRow(i["case_id"], i.get("team_id"), i.get("caseworker_id"),
                    date.fromisoformat(i["next_due_on"]) if i.get("next_due_on") else None,
                    int(i.get("overdue") or 0), int(i.get("due_soon") or 0), int(i.get("exceptions") or 0),
                    int(i.get("open") or 0)) for i in items]
    return sorted(rows, key=lambda r: (r.next_due_on is None, r.next_due_on or date.max, r.case_id))


# --- families ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FamilyStep:
    what: str
    on: date
    outcome: str | None = None  # met | met_late | missed | exception | None (still to come)


@dataclass(frozen=True)
class FamilyTimeline:
    happened: list[FamilyStep]
    next: list[FamilyStep]
    council_deadlines: list[FamilyStep]  # past council duties with their outcome


def _council_duty(words: str, language: str) -> str:
    return (f"Rhaid i'r cyngor {words}" if language == "cy" else f"The council must {words}")


def family_timeline(deadlines: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], today: date,
                    language: str = "en") -> FamilyTimeline:
    lang: Language = "cy" if language == "cy" else "en"
    happened = [FamilyStep(words_for_event(e["type"], lang), date.fromisoformat(str(e["occurred_on"])))
                for e in events if e["type"] in FAMILY_EVENTS]
    upcoming, past = [], []
    for d in deadlines:
        phrases = FAMILY_DUTIES.get(d["rule_id"])
        if phrases is None or d.get("kind", "duty") != "duty":
            continue
        due = date.fromisoformat(str(d["due_on"]))
        what = _council_duty(phrases.get(lang) or phrases["en"], lang)
        status = d["status"]
        done = (d.get("explanation") or {}).get("completed_on")
        if status == "cancelled":
            continue
        if done or status in ("met", "met_late"):
            past.append(FamilyStep(what, due, "met_late" if status == "met_late" else "met"))
        elif status == "exception":
            upcoming.append(FamilyStep(what, due, "exception"))
        else:  # still owed: open, due soon, or missed and not yet done
            upcoming.append(FamilyStep(what, due, "missed" if status == "breached" or due < today else None))
    return FamilyTimeline(sorted(happened, key=lambda s: s.on), sorted(upcoming, key=lambda s: s.on),
                          sorted(past, key=lambda s: s.on))


# --- managers: the 12-month trend ----------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    month: str
    label: str
    plans: int
    percent: float | None
    x: int
    y: int
    height: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    national_y: int | None


def trend_chart(months: Sequence[Mapping[str, Any]], national: float | None = 46.1, width: int = 640,
                height: int = 200) -> Chart:
    """Bars of the percentage of plans issued within 20 weeks, one per month (drawn as SVG by the
    template; the same figures are in a table beside it, for screen readers and without images)."""
    n = max(len(months), 1)
    step = width // n
    bars = []
    for i, m in enumerate(months):
        percent = m.get("percent_within_20_weeks")
        h = round((percent or 0) / 100 * (height - 20))
        year, month = (int(p) for p in str(m["month"]).split("-"))
        bars.append(Bar(str(m["month"]), date(year, month, 1).strftime("%b %Y"), int(m.get("plans") or 0),
                        percent, i * step + 4, height - h, h))
    national_y = None if national is None else height - round(national / 100 * (height - 20))
    return Chart(width, height, bars, national_y)


#: The family page's words. TODO(review): the Welsh needs checking by a Welsh speaker.
FAMILY_WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Your child's EHC timeline", "other_language": "Cymraeg", "other_code": "cy",
        "intro": "This page shows where your child's education, health and care (EHC) needs assessment or plan "
                 "stands. Only people with this link can see it. It shows no names.",
        "next": "What happens next", "next_none": "Nothing is due from the council at the moment.",
        "by": "by", "late": "This is late: the legal time limit has passed.",
        "happened": "What has happened", "happened_none": "Nothing recorded yet.",
        "deadlines": "The council's deadlines so far", "met": "Done on time", "met_late": "Done late",
        "missed": "Missed", "exception": "An exception to the time limit applies",
        "contact": "Who to contact", "team": "Your council's SEND team", "phone": "Phone",
        "sendiass": "Free, impartial advice: your local SEND information, advice and support service (SENDIASS)",
        "tell": "Tell the council something", "topic": "What is it about?", "message": "Your message",
        "message_hint": "Do not include medical details. The council will reply by your usual contact.",
        "send": "Send to the council", "sent": "Your message has been sent to your child's caseworker.",
    },
    "cy": {
        "title": "Llinell amser EHC eich plentyn", "other_language": "English", "other_code": "en",
        "intro": "Mae'r dudalen hon yn dangos ble mae asesiad neu gynllun addysg, iechyd a gofal (EHC) eich plentyn. "
                 "Dim ond pobl sydd a'r ddolen hon sy'n gallu ei gweld. Nid yw'n dangos enwau.",
        "next": "Beth sy'n digwydd nesaf", "next_none": "Nid oes dim yn ddyledus gan y cyngor ar hyn o bryd.",
        "by": "erbyn", "late": "Mae hyn yn hwyr: mae'r terfyn amser cyfreithiol wedi mynd heibio.",
        "happened": "Beth sydd wedi digwydd", "happened_none": "Dim wedi'i gofnodi eto.",
        "deadlines": "Terfynau amser y cyngor hyd yma", "met": "Gwnaed mewn pryd", "met_late": "Gwnaed yn hwyr",
        "missed": "Wedi'i fethu", "exception": "Mae eithriad i'r terfyn amser yn berthnasol",
        "contact": "Pwy i gysylltu a nhw", "team": "Tim AAAA eich cyngor", "phone": "Ffon",
        "sendiass": "Cyngor diduedd am ddim: eich gwasanaeth gwybodaeth, cyngor a chymorth AAAA lleol (SENDIASS)",
        "tell": "Dweud rhywbeth wrth y cyngor", "topic": "Am beth mae'n ymwneud?", "message": "Eich neges",
        "message_hint": "Peidiwch a chynnwys manylion meddygol. Bydd y cyngor yn ateb yn y ffordd arferol.",
        "send": "Anfon at y cyngor", "sent": "Mae eich neges wedi'i hanfon at weithiwr achos eich plentyn.",
    },
}
