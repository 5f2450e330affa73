"""Data that cannot be true: per-case data-quality warnings (issue 11, item 5).

A pure check over one case's effective history (corrections and retractions already applied),
shared by intake (``ehc intake import`` prints the warnings per file) and deadlines (stores them
and shows them on the case). The engine still computes deadlines from such data; the warnings
say which dates to check before anyone relies on them.

Each check is a function ``(events) -> iterable of DataQualityWarning`` registered in
:data:`DATA_QUALITY_CHECKS`; another check (e.g. a date beyond the working-day calendar) plugs in
with :func:`register_check`. An event is anything with ``id``, ``type``, ``occurred_on`` and a
``data`` mapping whose date fields are :class:`datetime.date` (the deadlines engine's
CaseEventRecord, or :class:`CaseFact`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from operator import attrgetter, itemgetter
from typing import Any, Protocol

from shared.dates import add_months


class CaseFact(Protocol):
    id: str
    type: str
    occurred_on: date
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Fact:
    """A minimal case event for the check (what intake builds from a canonical envelope)."""

    id: str
    type: str
    occurred_on: date
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataQualityWarning:
    """One impossible (or near-impossible) arrangement of a case's dates.

    ``code`` is stable (for filters and tests), ``message`` plain English without personal data,
    ``event_ids`` the events whose dates disagree, ``severity`` ``warning`` or ``error``.
    """

    code: str
    message: str
    event_ids: tuple[str, ...]
    severity: str = "warning"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "event_ids": list(self.event_ids)}


Check = Callable[[Sequence[CaseFact]], Iterable[DataQualityWarning]]
DATA_QUALITY_CHECKS: list[Check] = []


def register_check(check: Check) -> Check:
    """Add a check (usable as a decorator); checks run in the order they were registered."""
    DATA_QUALITY_CHECKS.append(check)
    return check


_by_day_and_id = attrgetter("occurred_on", "id")


def check_case(events: Iterable[CaseFact]) -> list[DataQualityWarning]:
    """Every warning of one case's history, in a stable order (by code, then event ids)."""
    history = sorted(events, key=_by_day_and_id)
    if not history:
        return []
    out: list[DataQualityWarning] = []
    for check in DATA_QUALITY_CHECKS:
        out.extend(check(history))
    if len(out) > 1:  # almost every history has none
        out.sort(key=_by_code_and_ids)
    return out


_by_code_and_ids = attrgetter("code", "event_ids")


# -- helpers -----------------------------------------------------------------------------------


def _when(e: CaseFact) -> date:
    """The date an event stands for: a draft's service day, else its occurred_on."""
    if e.type == "ehc.draft_plan.issued":
        served = e.data.get("served_on")
        if isinstance(served, date):
            return served
    return e.occurred_on


# -- answered before asked ---------------------------------------------------------------------

# (code, what asks, what answers, key field, message). An answer is flagged when nothing asked for
# it since the previous answer, the next event of the pair is an ask, and that ask has no answer
# after it: the answer's date is most likely before the date of the ask it answers.
_PAIRS: tuple[tuple[str, frozenset[str], frozenset[str], str | None, str], ...] = (
    ("decision_before_request", frozenset({"ehc.request.received"}), frozenset({"ehc.assessment.decided"}), None,
     "the decision whether to assess is dated before the request it answers"),
    ("reassessment_decision_before_request", frozenset({"ehc.reassessment.requested"}),
     frozenset({"ehc.reassessment.decided"}), None,
     "the decision whether to re-assess is dated before the request it answers"),
    ("review_decision_before_meeting", frozenset({"ehc.review.meeting_held"}),
     frozenset({"ehc.review.decision_issued"}), None,
     "the review decision is dated before the review meeting it follows"),
    ("review_report_before_meeting", frozenset({"ehc.review.meeting_held"}), frozenset({"ehc.review.report_sent"}),
     None, "the review report is dated before the review meeting it reports on"),
    ("advice_received_before_requested", frozenset({"ehc.advice.requested"}), frozenset({"ehc.advice.received"}),
     "advice_id", "the advice is dated before it was asked for"),
    ("consultation_response_before_consultation", frozenset({"ehc.consultation.sent"}),
     frozenset({"ehc.consultation.responded"}), "institution_id",
     "the school's reply is dated before the consultation it answers"),
    ("plan_ceased_before_issued", frozenset({"ehc.plan.issued", "ehc.plan.transferred_in"}),
     frozenset({"ehc.plan.ceased"}), None, "the plan is ceased before the plan was issued"),
    ("appeal_decided_before_registered", frozenset({"ehc.appeal.registered"}),
     frozenset({"ehc.tribunal.order", "ehc.appeal.unopposed"}), None,
     "the tribunal's order (or the LA's concession) is dated before the appeal was registered"),
)


# Which pairs an event type takes part in: type -> ((index in _PAIRS, 1 if it answers else 0, key field), ...);
# the types interned, as readers intern the records' (services/deadlines/adapters/event_lines.py)
_PAIR_ROLES: dict[str, tuple[tuple[int, int, str | None], ...]] = {}
for _i, (_, _asks, _answers, _key, _) in enumerate(_PAIRS):
    for _type in _asks | _answers:
        _PAIR_ROLES[sys.intern(_type)] = (*_PAIR_ROLES.get(_type, ()), (_i, 1 if _type in _answers else 0, _key))
del _i, _asks, _answers, _key, _type


_token_order = itemgetter(0, 1, 2)
_DRAFT = "ehc.draft_plan.issued"  # the one type _when dates otherwise than by occurred_on
_type_of = attrgetter("type")


def _answered_before_asked(history: Sequence[CaseFact]) -> list[DataQualityWarning]:
    # One pass over the history gathers every pair's tokens, grouped by the pair and its key field's value.
    # A token (date, 1 if it answers else 0, id, event) sorts by its first three: on the same day the ask
    # comes first (same-day answers are possible), then by id.
    groups: dict[tuple[int, Any], list[tuple[date, int, str, CaseFact]]] = {}
    roles_of = _PAIR_ROLES.get
    for e in history:
        roles = roles_of(e.type)
        if roles is None:
            continue
        when = _when(e) if e.type == _DRAFT else e.occurred_on
        for i, is_answer, key in roles:
            group = (i, e.data.get(key) if key else None)
            tokens = groups.get(group)
            if tokens is None:
                groups[group] = [(when, is_answer, e.id, e)]
            else:
                tokens.append((when, is_answer, e.id, e))
    out: list[DataQualityWarning] = []
    # check_case orders the warnings, so the groups are taken as they come
    for (i, _), tokens in groups.items():
        if len(tokens) == 2:  # the usual group: one ask and its answer, flagged when the answer's day is first
            first, second = tokens
            if first[1] == second[1]:
                continue
            answer, ask = (first, second) if first[1] else (second, first)
            if answer[0] < ask[0]:
                code, _, _, _, message = _PAIRS[i]
                e, asked = answer[3], ask[3]
                out.append(DataQualityWarning(code, f"{message} ({_when(e)} before {_when(asked)})", (e.id, asked.id)))
            continue
        answers = sum(token[1] for token in tokens)
        if answers == 0 or answers == len(tokens):
            continue  # only asks, or only answers: nothing answered before it was asked
        code, _, _, _, message = _PAIRS[i]
        tokens.sort(key=_token_order)
        for j, (_, is_answer, _, e) in enumerate(tokens):
            if not is_answer or (j > 0 and tokens[j - 1][1] == 0):
                continue
            if j + 1 >= len(tokens) or tokens[j + 1][1] != 0:
                continue
            if j + 2 < len(tokens) and tokens[j + 2][1] == 1:
                continue
            ask = tokens[j + 1][3]
            out.append(DataQualityWarning(code, f"{message} ({_when(e)} before {_when(ask)})", (e.id, ask.id)))
    return out


# -- a draft after its final plan -----------------------------------------------------------------

# Events that start a new assessment: a draft after them belongs to a new plan.
_ASSESSMENT_STARTS = frozenset({
    "ehc.request.received", "ehc.reassessment.decided", "ehc.reassessment.requested", "ehc.tribunal.order",
    "ehc.appeal.unopposed",
})


_DRAFT_AND_PLAN = frozenset({_DRAFT, "ehc.plan.issued"})


def _draft_after_final(history: Sequence[CaseFact]) -> Iterable[DataQualityWarning]:
    if not _DRAFT_AND_PLAN <= set(map(_type_of, history)):
        return  # no draft, or no final plan for it to follow
    last_plan: CaseFact | None = None
    for e in sorted(history, key=lambda x: (_when(x), x.id)):
        if e.type == "ehc.plan.issued":
            last_plan = e
        elif e.type in _ASSESSMENT_STARTS:
            last_plan = None
        elif e.type == "ehc.draft_plan.issued" and last_plan is not None and _when(e) > _when(last_plan):
            yield DataQualityWarning(
                "draft_after_final_plan",
                f"a draft plan served on {_when(e)} comes after the final plan of {_when(last_plan)}, "
                "with no new assessment between them",
                (e.id, last_plan.id),
            )


# -- a plan ceased days after being issued ------------------------------------------------------


_CEASED_AND_PLAN = frozenset({"ehc.plan.ceased", "ehc.plan.issued"})


def _ceased_soon_after_issue(history: Sequence[CaseFact]) -> Iterable[DataQualityWarning]:
    """Ceasing needs a cease notice and then the 2 months allowed for appealing it (CFA s.45;
    Regs 31; HESC Rules 20(1)(c)): a plan ceased less than 2 months after it was issued cannot
    have gone through that, so one of the two dates is probably wrong."""
    if not _CEASED_AND_PLAN <= set(map(_type_of, history)):
        return
    last_plan: CaseFact | None = None
    for e in history:
        if e.type == "ehc.plan.issued":
            last_plan = e
        elif e.type == "ehc.plan.ceased" and last_plan is not None:
            if last_plan.occurred_on <= e.occurred_on < add_months(last_plan.occurred_on, 2):
                days = (e.occurred_on - last_plan.occurred_on).days
                yield DataQualityWarning(
                    "plan_ceased_soon_after_issue",
                    f"the plan is ceased {days} days after it was issued; a cease notice and the 2 months "
                    "allowed to appeal it cannot fit in that time",
                    (e.id, last_plan.id),
                )
            last_plan = None


# -- dates inside one event -----------------------------------------------------------------------


def _event_dates(history: Sequence[CaseFact]) -> Iterable[DataQualityWarning]:
    for e in history:
        data = e.data
        notice = data.get("notice_sent_on")
        if isinstance(notice, date) and notice < e.occurred_on and e.type != "ehc.plan.ceased":
            yield DataQualityWarning(
                "notice_before_decision",
                f"the notice is dated {notice}, before the decision it gives notice of ({e.occurred_on})",
                (e.id,),
            )
        if e.type == "ehc.review.meeting_scheduled":
            meeting = data.get("meeting_on")
            if isinstance(meeting, date) and meeting < e.occurred_on:
                yield DataQualityWarning(
                    "meeting_invited_after_meeting",
                    f"the review meeting of {meeting} is scheduled on {e.occurred_on}, after it took place",
                    (e.id,),
                )
        elif e.type == "ehc.plan.transferred_in":
            made, reviewed, moved = data.get("plan_made_on"), data.get("last_reviewed_on"), data.get("transfer_on")
            if isinstance(made, date) and isinstance(moved, date) and made > moved:
                yield DataQualityWarning(
                    "plan_made_after_transfer", f"the plan is dated {made}, after its transfer on {moved}", (e.id,)
                )
            if isinstance(reviewed, date) and isinstance(made, date) and reviewed < made:
                yield DataQualityWarning(
                    "review_before_plan_made",
                    f"the plan's last review ({reviewed}) is before the plan was made ({made})", (e.id,),
                )
            if isinstance(reviewed, date) and isinstance(moved, date) and reviewed > moved:
                yield DataQualityWarning(
                    "review_after_transfer",
                    f"the old LA's last review ({reviewed}) is after the transfer ({moved})", (e.id,),
                )


for _check in (_answered_before_asked, _draft_after_final, _ceased_soon_after_issue, _event_dates):
    register_check(_check)
del _check

__all__ = ["DATA_QUALITY_CHECKS", "CaseFact", "DataQualityWarning", "Fact", "check_case", "register_check"]
