"""The deadlines engine: a pure function from a case's history to its deadlines (DESIGN §3).

``compute`` recomputes the whole case every time, so corrections (``supersedes``), retractions,
late and out-of-order events need no special handling beyond :func:`resolve_history`, which turns
any arrangement of the same events into the same ordered history.

How a case is computed:

1. :func:`resolve_history` drops duplicates, retracted events and superseded events, then orders
   the rest by ``occurred_on``, ``recorded_at``, ``id``.
2. Each event, in order: a closing event (``ehc.case.closed``) cancels every open clock; otherwise
   it completes / ends / extends / holds / releases the open clocks whose rule lists it, cancels
   those whose rule says so, then starts the rules listing it in the rule-set version in force on
   its ``occurred_on``.
3. Post-passes that look at the whole history: recorded exceptions (E1-E5), "E1/E2 may apply"
   from term calendars, and checks such as Devon's amendments-with-decision.
4. Each clock becomes a :class:`Deadline` with a status as of ``as_of``.

No I/O, no clock reads: everything comes in through the arguments. The replay loop is the
service's hot path (hundreds of thousands of cases per rebuild), which is why it reads rule data
through precompiled lookups (rules.RuleIndex, rules.Starter) and keeps what it uses in locals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from functools import lru_cache
from operator import attrgetter
from typing import Any

from shared.data_quality import DataQualityWarning, check_case

from .calculators import CALCULATOR_INPUTS, CALCULATORS, apply_convention
from .calendar import TermCalendar, WorkingDayCalendar
from .events import (
    ADVICE_REQUESTED,
    AMENDMENT_PROPOSED,
    EVENT_RETRACTED,
    EXCEPTION_RECORDED,
    EXCEPTION_WITHDRAWN,
    CaseEventRecord,
    order_key,
)
from .model import Deadline, DeadlineKind, DeadlineStatus
from .rules import EventMatch, Rule, RuleSet, RuleSetHistory, Starter

_DUTY = DeadlineKind.DUTY.value
_WINDOW = DeadlineKind.WINDOW.value
_NOT_BEFORE = DeadlineKind.NOT_BEFORE.value

OPEN = DeadlineStatus.OPEN
DUE_SOON = DeadlineStatus.DUE_SOON
MET = DeadlineStatus.MET
MET_LATE = DeadlineStatus.MET_LATE
BREACHED = DeadlineStatus.BREACHED
EXCEPTION = DeadlineStatus.EXCEPTION
CANCELLED = DeadlineStatus.CANCELLED

_ONE_DAY = timedelta(days=1)

# Which closures make E1 or E2 possible (law file B): a school's or post-16 institution's head,
# or an early years provider's SEN lead, asked for advice.
_CLOSURE_EXCEPTION_BY_PROVIDER = {"school": "E1", "post16": "E1", "early_years": "E2"}


# -- 1. history ---------------------------------------------------------------------------------


_supersedes_of = attrgetter("supersedes")
_type_of = attrgetter("type")
_case_of = attrgetter("case_id")
_id_of = attrgetter("id")


def _duplicate_rank(e: CaseEventRecord) -> tuple[Any, ...]:
    # Two deliveries of one id should be identical; if not, keep a deterministic one.
    return (e.recorded_at, e.occurred_on, e.type, repr(sorted(e.data.items(), key=lambda kv: kv[0])))


def resolve_history(
    events: Iterable[CaseEventRecord], types: set[str] | None = None
) -> tuple[list[CaseEventRecord], dict[str, str]]:
    """The effective history of a case, in canonical order, and an alias map.

    - The same ``id`` twice counts once.
    - ``ehc.event.retracted`` removes the event it names (and itself takes no further part; a
      retraction cannot itself be retracted).
    - An event with ``supersedes`` replaces the event it names; when several replace the same
      event, the one recorded last (then the greatest id) wins. Chains are followed.

    The alias map sends every replaced id to the id of the event now standing for it, so that an
    ``ehc.exception.withdrawn`` naming the original exception event still finds its correction.
    Set operations only: the result does not depend on the order of the input. ``types``, when
    given, is the set of the events' types (``compute`` has it already).
    """
    given = list(events)  # a copy: the caller's list is never reordered
    if types is None:
        types = set(map(_type_of, given))
    # Fast path (almost every case): distinct ids, no corrections, no retractions. The checks
    # run as C loops (map over attrgetters).
    if (
        EVENT_RETRACTED not in types
        and len(set(map(_id_of, given))) == len(given)
        and not any(map(_supersedes_of, given))
    ):
        given.sort(key=order_key)
        return given, {}

    by_id: dict[str, CaseEventRecord] = {}
    for e in given:
        seen = by_id.get(e.id)
        if seen is not None and _duplicate_rank(e) <= _duplicate_rank(seen):
            continue
        by_id[e.id] = e

    retracted = {str(e.data.get("retracts")) for e in by_id.values() if e.type == EVENT_RETRACTED}
    live = [e for e in by_id.values() if e.type != EVENT_RETRACTED and e.id not in retracted]
    winners: dict[str, CaseEventRecord] = {}
    losers: set[str] = set()
    for e in live:
        target = e.supersedes
        if target is None or target == e.id:
            continue
        current = winners.get(target)
        if current is None:
            winners[target] = e
        elif (e.recorded_at, e.id) > (current.recorded_at, current.id):
            losers.add(current.id)
            winners[target] = e
        else:
            losers.add(e.id)
    dropped = set(winners) | losers
    effective = [e for e in live if e.id not in dropped]

    alias: dict[str, str] = {}
    for target in winners:
        seen_ids = {target}
        final = winners[target].id
        while final in winners and final not in seen_ids:  # follow a chain of corrections
            seen_ids.add(final)
            final = winners[final].id
        alias[target] = final
    effective.sort(key=order_key)
    return effective, alias


# -- 2. clocks ------------------------------------------------------------------------------------


class _Clock:
    """The mutable working state of one deadline while a case is replayed, and then the Deadline.

    A plain slotted class (identity equality: list.remove must not compare fields) whose
    ``__init__`` sets the defaults as constants: one is built per deadline of every case.

    Its slots are exactly :class:`Deadline`'s, so that :meth:`_CaseRun.deadlines` can turn each
    clock into its Deadline in place (fill the output-only fields, then relabel with a
    ``__class__`` assignment, allowed between classes with the same slot layout; see
    model.MutableDeadline) instead of building a second object per deadline. The working state
    lives in slots whose output value is only set at that point, reached through the aliases
    defined below the class (a slot's member descriptor works under any name):

    ==================  ===============================  ==================================
    working name        slot                             role in the output
    ==================  ===============================  ==================================
    rule                rule_id                          overwritten by deadlines()
    trigger_data        case_id                          overwritten
    key_value           deadline_id                      overwritten
    completion          title                            overwritten
    ended               kind                             overwritten
    early               status                           overwritten
    held                responsible                      overwritten
    extra_dates         legal_source                     overwritten
    before_ruleset      convention                       overwritten
    flags (a set)       flags                            overwritten (the sorted tuple)
    version             ruleset_version                  kept
    explanation         period_text                      kept
    completed_by        completed_by_event_id            kept
    cancelled_by        cancelled_by_event_id            kept
    ==================  ===============================  ==================================

    The other slots (instance, due_on, trigger_*, completed_on, cancelled_on, exception*) have
    their own names. After deadlines() a clock *is* its Deadline and must not be used as a clock.
    """

    __slots__ = Deadline.__slots__

    rule: Rule
    version: str
    key_value: str | None
    trigger_data: Mapping[str, Any]
    explanation: str
    before_ruleset: bool
    completed_by: str | None
    completion: CaseEventRecord | None
    ended: bool
    early: bool
    cancelled_by: str | None
    held: bool
    extra_dates: list[date] | None

    def __init__(
        self, rule: Rule, version: str, instance: str, key_value: str | None, trigger_event_id: str,
        trigger_date: date, trigger_data: Mapping[str, Any], due_on: date, explanation: str,
        before_ruleset: bool = False,
    ) -> None:
        self.rule = rule
        self.version = version
        self.instance = instance
        self.key_value = key_value
        self.trigger_event_id = trigger_event_id
        self.trigger_date = trigger_date
        self.trigger_data = trigger_data
        self.due_on = due_on
        self.explanation = explanation
        self.before_ruleset = before_ruleset
        self.completed_by: str | None = None
        self.completed_on: date | None = None
        self.completion: CaseEventRecord | None = None
        self.ended = False  # a window ended by the LA's act, not by the family's
        self.early = False
        self.cancelled_by: str | None = None
        self.cancelled_on: date | None = None
        self.held = False
        self.extra_dates: list[date] | None = None
        self.flags: set[str] | None = None
        self.exception: str | None = None
        self.exception_reason: str | None = None
        self.exception_event_id: str | None = None

    def flag(self, name: str) -> None:
        if self.flags is None:
            self.flags = {name}
        else:
            self.flags.add(name)


# The working names of _Clock (see its docstring): each is the member descriptor of a Deadline slot.
for _name, _slot in (
    ("rule", "rule_id"), ("trigger_data", "case_id"), ("key_value", "deadline_id"), ("completion", "title"),
    ("ended", "kind"), ("early", "status"), ("held", "responsible"), ("extra_dates", "legal_source"),
    ("before_ruleset", "convention"), ("version", "ruleset_version"), ("explanation", "period_text"),
    ("completed_by", "completed_by_event_id"), ("cancelled_by", "cancelled_by_event_id"),
):
    setattr(_Clock, _name, _Clock.__dict__[_slot])
del _name, _slot


_NUMBERS = tuple(str(i) for i in range(64))  # instance names "0".."63", built once

_calc_memo: dict[tuple[Any, ...], tuple[date, str]] = {}
_CALC_MEMO_MAX = 1 << 16


def _calculated(rule: Rule, calendar: WorkingDayCalendar, trigger: date, data: Mapping[str, Any]) -> tuple[date, str]:
    """A named calculator's due date and explanation, memoised on exactly its inputs.

    Calculators are pure; the key holds the rule and calendar objects themselves (hashed by
    identity, kept alive by the memo), the trigger and the data fields the calculator reads.
    """
    name = rule.calculator or ""
    inputs = CALCULATOR_INPUTS[name]
    key = (rule, calendar, trigger, *[data.get(f) for f in inputs]) if inputs else (rule, calendar, trigger)
    found = _calc_memo.get(key)
    if found is None:
        due, note = CALCULATORS[name](trigger, data, rule.period, rule.params, calendar, ())
        if len(_calc_memo) >= _CALC_MEMO_MAX:
            _calc_memo.clear()
        found = _calc_memo[key] = (due, f"{rule.explanation}: {note}")
    return found


class _CaseRun:
    """Replays one case's effective history against a rule set (one version or a history)."""

    __slots__ = (
        "history", "calendar", "clocks", "open", "counters", "keys", "episodes", "group_open", "closing",
        "dispatch", "single", "checked",
    )

    def __init__(self, history: RuleSet | RuleSetHistory, calendar: WorkingDayCalendar) -> None:
        self.history = history
        self.calendar = calendar
        self.clocks: list[_Clock] = []  # every clock, in the order it started
        self.checked: list[_Clock] = []  # clocks whose rule names checks (run_checks)
        self.open: dict[str, list[_Clock]] = {}  # rule_id -> clocks not completed or stopped
        self.counters: dict[str, int] = {}  # rule_id -> instances started (counter keys)
        self.keys: dict[tuple[str, str], int] = {}  # (rule_id, key) -> uses (field keys)
        self.episodes: dict[str, int] = {}  # group -> current episode (episode keys)
        self.group_open: dict[str, int] = {}  # group -> open clocks
        self.closing = history.index.closing
        # One version (the usual case): its own dispatch gives starts too, with no date lookup.
        # Several: the merged dispatch gives what acts on open clocks; starts come from the
        # version in force on the event's date.
        self.single: RuleSet | None = history.versions[0] if len(history.versions) == 1 else None
        self.dispatch = (self.single or history).index.dispatch

    # -- lifecycle helpers ----------------------------------------------------------------------

    def _close(self, clock: _Clock) -> None:
        rule = clock.rule
        self.open[rule.rule_id].remove(clock)
        group = rule.instance.group
        if group is not None:
            self.group_open[group] -= 1

    def _complete(self, clock: _Clock, event: CaseEventRecord, day: date, ended: bool = False) -> None:
        clock.completed_by = event.id
        clock.completed_on = day
        clock.completion = event
        clock.ended = ended
        rule = clock.rule
        if rule.early_flag is not None:
            if clock.held:
                clock.early = True
                clock.flag("ceased_before_appeal_decided")
            elif day <= clock.due_on:
                clock.early = True
                clock.flag(rule.early_flag)
        self._close(clock)

    def _cancel(self, clock: _Clock, event: CaseEventRecord, day: date) -> bool:
        """Cancel the clock; False when that would erase what already happened: a duty already
        breached stays breached and a window already elapsed stays closed (the clock still stops,
        so nothing later can complete it and a re-request can start afresh)."""
        rule = clock.rule
        if day > clock.due_on and not clock.held:
            if rule.kind == _WINDOW or (rule.kind == _DUTY and not rule.never_breached):
                if rule.kind == _DUTY:
                    clock.flag("stopped_after_due")
                self._close(clock)
                return False
        clock.cancelled_by = event.id
        clock.cancelled_on = day
        self._close(clock)
        return True

    def _recompute_due(self, clock: _Clock) -> None:
        rule = clock.rule
        if rule.calculator is None:
            return
        due, note = CALCULATORS[rule.calculator](
            clock.trigger_date, clock.trigger_data, rule.period, rule.params, self.calendar, clock.extra_dates or ()
        )
        clock.due_on = due
        clock.explanation = f"{rule.explanation}: {note}"

    # -- the replay -----------------------------------------------------------------------------

    def run(self, events: Sequence[CaseEventRecord]) -> None:
        """Replay the ordered history, one event at a time (step 2 of the module docstring)."""
        single = self.single
        dispatch = self.dispatch
        if single is None and events:
            # Several versions, but every event of the case in one version's span (almost every
            # case): every clock comes from that version, so its own dispatch is complete.
            in_force, _, end = self.history.span(events[0].occurred_on)  # type: ignore[union-attr]
            if events[-1].occurred_on < end:
                single, dispatch = in_force, in_force.index.dispatch
        dispatch_get = dispatch.get
        closing = self.closing
        open_ = self.open
        open_get = open_.get
        act = self._act
        cancel = self._cancel
        start = self._start
        # Several versions: the one in force on the last event's day, and the days it covers.
        span_version: RuleSet | None = None
        span_first = span_end = date.min
        span_dispatch: Mapping[str, Any] = {}
        for event in events:
            t = event.type
            plan = dispatch_get(t)
            if plan is None:  # nothing to do, or a closing event (never in the dispatch)
                if t in closing:
                    for open_clocks in open_.values():
                        for clock in open_clocks[:]:
                            cancel(clock, event, event.occurred_on)
                continue
            acting, cancelling, starting = plan
            for rule_id in acting:
                clocks = open_get(rule_id)
                if clocks:
                    act(clocks, event)
            for rule_id in cancelling:
                clocks = open_get(rule_id)
                if clocks:
                    for clock in clocks[:]:
                        for m in clock.rule.cancels.get(t, ()):
                            if not m.conditional or m.matches(event.data):
                                cancel(clock, event, m.date_of(event.occurred_on, event.data))
                                break
            version = single
            if version is None:
                day = event.occurred_on
                if not span_first <= day < span_end:
                    span_version, span_first, span_end = self.history.span(day)  # type: ignore[union-attr]
                    span_dispatch = span_version.index.dispatch
                version = span_version
                found = span_dispatch.get(t)
                starting = found[2] if found is not None else ()
            if starting:
                start(starting, event, version)

    def _act(self, clocks: list[_Clock], event: CaseEventRecord) -> None:
        """Apply what one rule does with this event to its open clocks, newest first.

        At most one action per clock per event. An action with ``select: latest`` stops at the
        newest clock it applies to (a certificate or an appeal answers the latest notice).
        """
        data = event.data
        t = event.type
        for clock in clocks[::-1]:
            rule = clock.rule
            for action, m in rule.actions.get(t, ()):
                if m.conditional and not (
                    m.matches(data)
                    and (m.instance_field is None or m.names_instance(data, clock.instance, clock.trigger_date))
                ):
                    continue
                if m.match_field is not None and str(data.get(m.match_field)) != clock.key_value:
                    continue
                if action == "released" and not clock.held:
                    continue
                day = event.occurred_on if m.date_field is None else m.date_of(event.occurred_on, data)
                if action == "completed" and rule.early_flag is None and rule.instance.group is None:
                    # _complete for the common case, inlined: most clocks end here
                    clock.completed_by = event.id
                    clock.completed_on = day
                    clock.completion = event
                    clocks.remove(clock)
                elif action == "completed" or action == "ended":
                    self._complete(clock, event, day, action == "ended")
                elif action == "extended":
                    if clock.extra_dates is None:
                        clock.extra_dates = []
                    clock.extra_dates.append(day)
                    self._recompute_due(clock)
                    clock.flag("mediation_certificate")
                elif action == "held":
                    clock.held = True
                    clock.flag("appeal_pending")
                else:  # released
                    clock.held = False
                    if clock.flags is not None:
                        clock.flags.discard("appeal_pending")
                    clock.flag("appeal_decided")
                if m.select == "latest":
                    return
                break

    def _start(self, starters: Sequence[Starter], event: CaseEventRecord, version: RuleSet) -> None:
        """Start the rules listing this event (in the version in force), keyed per InstanceSpec.

        What does not depend on the rule is read once per event, and each rule's static start data
        comes as one tuple (rules.Starter).
        """
        data = event.data
        event_id = event.id
        occurred_on = event.occurred_on
        version_id = version.version
        effective_from = version.effective_from
        open_ = self.open
        counters = self.counters
        clocks_append = self.clocks.append
        group_blocked: dict[str, bool] | None = None
        for rule, matches, plain, rule_id, key, on_repeat, group, field_name in starters:
            match: EventMatch | None = plain
            if match is None:
                for m in matches:
                    if not m.conditional or m.matches(data):
                        match = m
                        break
                if match is None:
                    continue
            key_value: str | None = None
            open_clocks = open_.get(rule_id)
            if key == "counter":
                if open_clocks:
                    if on_repeat == "ignore":
                        continue
                    if on_repeat == "cancel_open":
                        for c in open_clocks[:]:
                            if self._cancel(c, event, occurred_on):
                                c.flag("replaced")
                counters[rule_id] = n = counters.get(rule_id, 0) + 1
                instance = _NUMBERS[n] if n < 64 else str(n)
            elif key == "episode":
                # Decided once per event for the whole group: a re-request starts every rule of the
                # group afresh, a duplicate request starts none.
                g = group or ""
                if group_blocked is None:
                    group_blocked = {}
                blocked = group_blocked.get(g)
                if blocked is None:
                    blocked = self.group_open.get(g, 0) > 0
                    group_blocked[g] = blocked
                    if not blocked:
                        self.episodes[g] = self.episodes.get(g, 0) + 1
                if blocked:
                    continue
                instance = str(self.episodes[g])
            else:
                key_value = str(data.get(field_name or ""))
                if open_clocks:
                    for c in open_clocks:
                        if c.key_value == key_value:
                            break
                    else:
                        c = None
                    if c is not None:
                        continue  # a repeated request for the same advice, still pending
                keys = self.keys
                pair = (rule_id, key_value)
                keys[pair] = n = keys.get(pair, 0) + 1
                instance = key_value if n == 1 else f"{key_value}#{n}"

            if rule.variants:
                rule = rule.variants.get(str(data.get(rule.variant_field or "")), rule)
            date_field = match.date_field
            trigger = occurred_on if date_field is None else (data.get(date_field) or occurred_on)
            shift = rule.due_shift
            if shift is not None:
                due = trigger + shift
                explanation = rule.explanation
            elif rule.due_fn is not None:
                memo = rule.due_memo
                due = memo.get(trigger)
                if due is None:
                    due = memo[trigger] = rule.due_fn(trigger)
                explanation = rule.explanation
            elif rule.calculator is not None:
                due, explanation = _calculated(rule, self.calendar, trigger, data)
            else:
                due = apply_convention(rule.convention, rule.period, trigger, self.calendar)
                explanation = rule.explanation
            clock = _Clock(
                rule, version_id, instance, key_value, event_id, trigger, data, due, explanation,
                trigger < effective_from,
            )
            clocks_append(clock)
            if open_clocks is None:
                open_[rule_id] = [clock]
            else:
                open_clocks.append(clock)
            if rule.start_extras:  # rare: an episode group, checks to run, or self-completion
                if group is not None:
                    self.group_open[group] = self.group_open.get(group, 0) + 1
                if rule.checks:
                    self.checked.append(clock)
                if rule.completed_by_trigger:
                    self._complete(clock, event, occurred_on)

    # -- 3. post-passes -------------------------------------------------------------------------

    def apply_exceptions(self, events: Sequence[CaseEventRecord], alias: Mapping[str, str]) -> None:
        """Law file B: a recorded exception changes the status, never the date.

        Recorded after the due date, it does not erase the breach (england.md#L101-L103): the
        deadline keeps ``breached_before_exception`` and ``breached_on:<the day after due_on>``.
        An exception the rule allows only on an unconfirmed reading is flagged
        ``exception_unconfirmed:<code>`` (england.md#L24).
        """
        withdrawn = {
            alias.get(str(e.data.get("exception_event_id")), str(e.data.get("exception_event_id")))
            for e in events
            if e.type == EXCEPTION_WITHDRAWN
        }
        for e in events:
            if e.type != EXCEPTION_RECORDED or e.id in withdrawn:
                continue
            code = str(e.data.get("exception"))
            named = frozenset(e.data.get("rule_ids") or ())
            day = e.occurred_on
            reason = str(e.data.get("reason") or "")
            for clock in self.clocks:
                if named and clock.rule.rule_id not in named:
                    continue
                if not _running_on(clock, day):
                    continue
                if code not in clock.rule.exceptions:
                    if named:
                        clock.flag(f"exception_not_allowed:{code}")
                    continue
                clock.exception = code
                clock.exception_reason = reason
                clock.exception_event_id = e.id
                rule = clock.rule
                if code in rule.unconfirmed_exceptions:
                    clock.flag(f"exception_unconfirmed:{code}")
                if day > clock.due_on and rule.kind == _DUTY and not rule.never_breached:
                    clock.flag("breached_before_exception")
                    clock.flag(f"breached_on:{(clock.due_on + _ONE_DAY).isoformat()}")

    def flag_closures(self, events: Sequence[CaseEventRecord], terms: TermCalendar) -> None:
        """Law file B/C8: say when E1 or E2 *may* apply; only the LA decides that it does."""
        for e in events:
            if e.type != ADVICE_REQUESTED:
                continue
            code = _CLOSURE_EXCEPTION_BY_PROVIDER.get(str(e.data.get("provider_kind")))
            if code is None:
                continue
            day = e.occurred_on
            provider_id = e.data.get("provider_id")
            if not terms.closure_window_contains(str(provider_id) if provider_id else None, day):
                continue
            for clock in self.clocks:
                if code in clock.rule.exceptions and day <= clock.due_on and _running_on(clock, day):
                    clock.flag(f"exception_may_apply:{code}")

    def run_checks(self, events: Sequence[CaseEventRecord]) -> None:
        """Checks named by rules (``checks:``) that need the whole history."""
        proposals: list[date] | None = None
        for clock in self.checked:
            if "amendments_with_decision" not in clock.rule.checks:
                continue
            done = clock.completion
            if done is None or done.data.get("outcome") != "amend" or clock.completed_on is None:
                continue
            if proposals is None:
                proposals = [e.occurred_on for e in events if e.type == AMENDMENT_PROPOSED]
            start, end = clock.trigger_date, clock.completed_on
            if not any(start <= d <= end for d in proposals):
                clock.flag("amendments_not_sent_with_decision")

    # -- 4. output ------------------------------------------------------------------------------

    def deadlines(self, case_id: str, as_of: date, soon_limit: date) -> list[Deadline]:
        """Freeze every clock into a Deadline with its status as of ``as_of`` (law file B, C).

        The status logic is inlined (not a function per clock) and each clock becomes its Deadline
        in place (see _Clock): this loop runs for every deadline of every case. The working state
        held in output slots is read before those slots are overwritten.
        """
        out = self.clocks
        prefix = f"{case_id}:"
        cls = Deadline
        for c in out:
            rule = c.rule
            kind = rule.kind
            due = c.due_on
            extra_flag: str | None = None
            # -- status: cancelled > completed > (kind-specific) > exception > time
            if c.cancelled_by is not None:
                status = CANCELLED
            elif c.completed_on is not None:
                if kind == _NOT_BEFORE:
                    status = BREACHED if c.early else MET
                elif c.ended or c.completed_on <= due:
                    status = MET
                else:
                    status = MET_LATE
            elif kind == _NOT_BEFORE:
                if c.held or as_of <= due:
                    status = OPEN
                else:
                    status, extra_flag = MET, "elapsed"
            elif kind == _WINDOW:
                if as_of > due:
                    status, extra_flag = MET, "elapsed"
                else:
                    status = DUE_SOON if due <= soon_limit else OPEN
            elif c.exception is not None:
                status = EXCEPTION
            elif as_of > due:
                if rule.never_breached:
                    status, extra_flag = OPEN, "past_due"
                else:
                    status = BREACHED
            else:
                status = DUE_SOON if due <= soon_limit else OPEN
            # -- flags: the rule's own, then the dynamic ones sorted
            dynamic = c.flags
            if extra_flag is not None or c.before_ruleset:
                dynamic = set(dynamic) if dynamic else set()
                if extra_flag is not None:
                    dynamic.add(extra_flag)
                if c.before_ruleset:
                    dynamic.add("before_ruleset_effective")
            rule_id = rule.rule_id
            # -- the output-only slots (the working state they held has been read above)
            c.flags = rule.flags + tuple(sorted(dynamic)) if dynamic else rule.flags
            c.case_id = case_id
            c.rule_id = rule_id
            c.deadline_id = f"{prefix}{rule_id}:{c.instance}"
            c.title = rule.title
            c.kind = kind
            c.status = status
            c.responsible = rule.responsible
            c.legal_source = rule.legal_source
            c.convention = rule.convention
            c.__class__ = cls  # now a frozen Deadline (see _Clock)
        self.clocks = []  # they are clocks no longer
        return out  # type: ignore[return-value]


def _running_on(clock: _Clock, day: date) -> bool:
    """The clock had started by ``day`` and was neither completed nor cancelled before it."""
    if clock.trigger_date > day:
        return False
    if clock.completed_on is not None and clock.completed_on < day:
        return False
    return not (clock.cancelled_on is not None and clock.cancelled_on < day)


# -- the public functions ---------------------------------------------------------------------------


def data_quality(case_events: Iterable[CaseEventRecord]) -> list[DataQualityWarning]:
    """Data of one case that cannot be true (issue 11): warnings beside its deadlines, computed on
    the effective history (corrections and retractions applied). Pure, like :func:`compute`;
    the checks live in shared.data_quality so that intake runs the same ones on a file."""
    events, _ = resolve_history(case_events)
    return check_case(events)


def compute(
    case_events: Iterable[CaseEventRecord],
    ruleset: RuleSet | RuleSetHistory,
    calendar: WorkingDayCalendar,
    as_of: date,
    *,
    terms: TermCalendar | None = None,
    due_soon_working_days: int | None = None,
) -> list[Deadline]:
    """Every deadline of one case, as of ``as_of``, in the order their clocks started.

    ``ruleset`` is one version, or a :class:`RuleSetHistory` from which each clock takes the
    version in force on its starting event's ``occurred_on``. ``terms`` (optional) lets the engine
    say when E1/E2 may apply. ``due_soon_working_days`` overrides the rule set's default (10).
    The result depends only on the arguments, never on the order of ``case_events``.
    """
    return _compute_resolved(*_resolve_case(case_events), ruleset, calendar, as_of, terms, due_soon_working_days)


def compute_with_quality(case_events: Iterable[CaseEventRecord], ruleset: RuleSet | RuleSetHistory,
                         calendar: WorkingDayCalendar, as_of: date, *, terms: TermCalendar | None = None,
                         due_soon_working_days: int | None = None
                         ) -> tuple[list[Deadline], list[DataQualityWarning]]:
    """``(compute(...), data_quality(case_events))`` with the case's history resolved once."""
    events, alias, types = _resolve_case(case_events)
    deadlines = _compute_resolved(events, alias, types, ruleset, calendar, as_of, terms, due_soon_working_days)
    return deadlines, check_case(events)  # the run reads the resolved events and never changes them


def _resolve_case(case_events: Iterable[CaseEventRecord]) -> tuple[list[CaseEventRecord], dict[str, str], set[str]]:
    """One case's effective history, its alias map, and its events' types (a superset of the
    effective history's: fine for gating)."""
    given = case_events if isinstance(case_events, list) else list(case_events)
    case_ids = set(map(_case_of, given))
    if len(case_ids) > 1:
        raise ValueError(f"compute takes one case; got {sorted(case_ids)!r} (use compute_cases)")
    types = set(map(_type_of, given))
    return (*resolve_history(given, types), types)


def _compute_resolved(
    events: list[CaseEventRecord],
    alias: dict[str, str],
    types: set[str],
    ruleset: RuleSet | RuleSetHistory,
    calendar: WorkingDayCalendar,
    as_of: date,
    terms: TermCalendar | None,
    due_soon_working_days: int | None,
) -> list[Deadline]:
    if not events:
        return []
    run = _CaseRun(ruleset, calendar)
    run.run(events)
    if EXCEPTION_RECORDED in types:
        run.apply_exceptions(events, alias)
    if terms is not None and ADVICE_REQUESTED in types:
        run.flag_closures(events, terms)
    if run.checked:
        run.run_checks(events)
    n = ruleset.versions[-1].due_soon_working_days if due_soon_working_days is None else due_soon_working_days
    return run.deadlines(events[0].case_id, as_of, _soon_limit(calendar, as_of, n))


@lru_cache(maxsize=64)
def _soon_limit(calendar: WorkingDayCalendar, as_of: date, n: int) -> date:
    """Due on or before this date is "due soon" (within n working days of as_of). Cached: every
    case of a run shares as_of; the calendar is hashed by identity and kept alive by the cache."""
    return calendar.add_working_days(as_of, n)


def compute_cases(
    events: Iterable[CaseEventRecord],
    ruleset: RuleSet | RuleSetHistory,
    calendar: WorkingDayCalendar,
    as_of: date,
    *,
    terms: TermCalendar | None = None,
    due_soon_working_days: int | None = None,
) -> list[Deadline]:
    """``compute`` for events of many cases, in any order; cases come out sorted by ``case_id``."""
    by_case: dict[str, list[CaseEventRecord]] = {}
    for e in events:
        by_case.setdefault(e.case_id, []).append(e)
    out: list[Deadline] = []
    for case_id in sorted(by_case):
        out.extend(
            compute(
                by_case[case_id], ruleset, calendar, as_of, terms=terms,
                due_soon_working_days=due_soon_working_days,
            )
        )
    return out
