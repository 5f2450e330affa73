"""Rule sets as data: versioned, with an effective-from date, loaded from YAML (or JSON).

A change in the law is a new rule-set file (same ``name``, a new ``version`` and
``effective_from``), not new code. Each clock uses the version in force on the date its starting
event occurred, so a case keeps the rules in force when its clock started.

A rule says: which events start it (``starts_on``), which complete it (``completed_by``), end a
family window (``ended_by``), cancel it (``cancelled_by``), move it (``extended_by``), hold a
not-before window open (``held_open_by`` / ``released_by``); its period and counting convention
(law file section C) or a named calculator; who acts; the legal source; flags; the exceptions its
legal source allows; and the open points a council's lawyers should review.
"""

from __future__ import annotations

import json
import sys
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from shared.working_days import YAML_LOADER

from .calculators import CALCULATORS, CONVENTIONS, Period, calendar_free_due, fixed_shift
from .events import CASE_EVENT_TYPES, EXCEPTION_CODES
from .model import DeadlineKind

RULESETS_DIR = Path(__file__).parent / "rulesets"

KINDS = frozenset(k.value for k in DeadlineKind)
UNITS = frozenset({"days", "weeks", "months", "working_days", "fixed_date"})
INSTANCE_KEYS = frozenset({"counter", "episode", "field"})
ON_REPEAT = frozenset({"new", "ignore", "cancel_open"})
SELECTS = frozenset({"all", "latest"})
CHECKS = frozenset({"amendments_with_decision"})

Conditions = tuple[tuple[str, frozenset[Any]], ...]


class RuleSetError(ValueError):
    """A rule-set file is malformed; the message names the file and the rule."""


@dataclass(frozen=True, slots=True)
class EventMatch:
    """An event type, with optional conditions on its data, that acts on a rule.

    ``date_field``: the data field giving the effective date (``occurred_on`` when absent or
    empty). ``match_field``: the data field that must equal the instance's key (advice_id, ...).
    ``select``: ``all`` open instances, or only the ``latest`` one. ``instance_field``: a data
    field that, when the event carries it, names the instance acted on: the deadline's instance
    (``1``, ``2``...) or its trigger date (``ehc.duty.done``'s ``instance``, e.g. a meeting date).
    """

    type: str
    when: Conditions = ()
    date_field: str | None = None
    match_field: str | None = None
    select: str = "all"
    require_date: bool = False
    instance_field: str | None = None
    # derived: `when`, `require_date` or `instance_field` set (else matches() is always True)
    conditional: bool = False

    def matches(self, data: Mapping[str, Any]) -> bool:
        for name, allowed in self.when:
            if data.get(name) not in allowed:
                return False
        # A start that needs its date field (appeal.la_response needs sent_to_la_on) waits for it.
        return not (self.require_date and data.get(self.date_field or "") is None)

    def names_instance(self, data: Mapping[str, Any], instance: str, trigger_date: date) -> bool:
        """True unless the event names another instance (by number or trigger date) than this one."""
        if self.instance_field is None:
            return True
        wanted = data.get(self.instance_field)
        return wanted is None or str(wanted) in (instance, trigger_date.isoformat())

    def date_of(self, occurred_on: date, data: Mapping[str, Any]) -> date:
        if self.date_field is not None:
            value = data.get(self.date_field)
            if value is not None:
                return value  # type: ignore[no-any-return]
        return occurred_on


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """How the instances of a rule are keyed (and so how ``deadline_id`` stays stable).

    - ``counter``: 1, 2, 3... in the order of the starting events.
    - ``episode``: shared by the rules of ``group``; a new episode starts only when every clock of
      the group is closed (a re-request after the previous request finished).
    - ``field``: the value of a data field (``advice_id``, ``institution_id``); a repeat after the
      first closed gets ``#2``, ``#3``...

    ``on_repeat`` (counter): a start while an instance is open makes a ``new`` one, is ``ignore``d,
    or cancels the open one first (``cancel_open``: a rescheduled meeting, a re-planned transfer).
    """

    key: str = "counter"
    group: str | None = None
    field: str | None = None
    on_repeat: str = "new"


@dataclass(frozen=True, slots=True, eq=False)  # identity: rules are hashed as memo keys
class Rule:
    """One rule of the law file (section A), as loaded from a rule-set file.

    The fields after ``checks`` are derived at load time for the engine's hot path; they add no
    meaning. ``variants`` (phase_transfer.review) are full rules chosen by ``variant_field``.
    """

    rule_id: str
    title: str
    section: str
    kind: str
    responsible: str
    legal_source: str
    convention: str
    period: Period
    period_text: str
    flags: tuple[str, ...]
    exceptions: frozenset[str]
    open_points: tuple[str, ...]
    instance: InstanceSpec
    starts_on: tuple[EventMatch, ...]
    completed_by: tuple[EventMatch, ...] = ()
    ended_by: tuple[EventMatch, ...] = ()
    cancelled_by: tuple[EventMatch, ...] = ()
    extended_by: tuple[EventMatch, ...] = ()
    held_open_by: tuple[EventMatch, ...] = ()
    released_by: tuple[EventMatch, ...] = ()
    completed_by_trigger: bool = False
    early_flag: str | None = None
    calculator: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    variant_field: str | None = None
    variants: Mapping[str, Rule] = field(default_factory=dict)
    checks: tuple[str, ...] = ()
    # The line(s) of the law file the rule follows (england.md#L..), and the exceptions it allows
    # on an unconfirmed reading (flagged `exception_unconfirmed:<code>` when recorded).
    law_ref: str = ""
    unconfirmed_exceptions: frozenset[str] = frozenset()
    # Derived at load time: the explanation prefix, the breach policy, and per event type what
    # the rule does with it (so the engine looks up instead of scanning).
    explanation: str = ""
    never_breached: bool = False
    actions: Mapping[str, tuple[tuple[str, EventMatch], ...]] = field(default_factory=dict)
    cancels: Mapping[str, tuple[EventMatch, ...]] = field(default_factory=dict)
    starts: Mapping[str, tuple[EventMatch, ...]] = field(default_factory=dict)
    # Due date from the trigger when no calendar or calculator is needed: a constant shift (C1,
    # C2, C6w) or a function (C3-C6m); else None.
    due_shift: timedelta | None = None
    due_fn: Callable[[date], date] | None = None
    # due_fn's results by trigger date: month arithmetic is slow and cases share trigger dates.
    # A cache of a pure function (at most one entry per calendar day), not state.
    due_memo: dict[date, date] = field(default_factory=dict)
    # Derived: whether starting a clock needs more than the common steps (an episode group,
    # checks, or completion by its own trigger).
    start_extras: bool = False

    def describe(self) -> dict[str, Any]:
        """The rule's metadata as plain values (for an API, a report, or a lawyer's review)."""
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "section": self.section,
            "law_ref": self.law_ref,
            "kind": self.kind,
            "responsible": self.responsible,
            "legal_source": self.legal_source,
            "convention": self.convention,
            "period_text": self.period_text,
            "flags": list(self.flags),
            "exceptions": sorted(self.exceptions),
            "unconfirmed_exceptions": sorted(self.unconfirmed_exceptions),
            "open_points": list(self.open_points),
            "starts_on": [m.type for m in self.starts_on],
            "completed_by": [m.type for m in self.completed_by],
            "variants": {k: v.describe() for k, v in self.variants.items()},
        }


@dataclass(frozen=True, slots=True)
class RuleIndex:
    """Which rules an event type can act on, compiled once per rule set for the hot path.

    ``dispatch[type]`` is ``(acting rule ids, cancelling rule ids, starting rules)``: acting means
    completes, ends, extends, holds or releases. The mappings are plain dicts for lookup speed;
    nothing mutates them after loading.
    """

    starts: Mapping[str, tuple[Rule, ...]]
    acting: Mapping[str, tuple[str, ...]]
    cancelling: Mapping[str, tuple[str, ...]]
    closing: frozenset[str]  # event types that cancel every open clock (ehc.case.closed)
    dispatch: Mapping[str, tuple[tuple[str, ...], tuple[str, ...], tuple[Starter, ...]]]


# What the engine needs to start one rule on one event type, flattened into a tuple so that the
# hot loop unpacks it in one step: (rule, its matches for that type, the match itself when it is
# the only one and has no condition (the common case: no matching to do), rule_id, instance key
# kind, on_repeat, group, key field).
Starter = tuple[
    Rule, tuple[EventMatch, ...], "EventMatch | None", str, str, str, "str | None", "str | None"
]


def _starters(rules: tuple[Rule, ...], event_type: str) -> tuple[Starter, ...]:
    out = []
    for r in rules:
        matches = r.starts[event_type]
        plain = matches[0] if len(matches) == 1 and not matches[0].conditional else None
        spec = r.instance
        out.append((r, matches, plain, r.rule_id, spec.key, spec.on_repeat, spec.group, spec.field))
    return tuple(out)


def _index(
    starts: dict[str, tuple[Rule, ...]],
    acting: dict[str, tuple[str, ...]],
    cancelling: dict[str, tuple[str, ...]],
    closing: frozenset[str],
) -> RuleIndex:
    # A closing event cancels every open clock, whatever rules list it: it is kept out of the
    # dispatch so the engine takes the closing path.
    dispatch = {
        t: (acting.get(t, ()), cancelling.get(t, ()), _starters(starts.get(t, ()), t))
        for t in (set(starts) | set(acting) | set(cancelling)) - closing
    }
    return RuleIndex(starts=starts, acting=acting, cancelling=cancelling, closing=closing, dispatch=dispatch)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One version of a rule set."""

    name: str
    version: str
    effective_from: date
    title: str
    due_soon_working_days: int
    closing_events: frozenset[str]
    rules: Mapping[str, Rule]
    open_points: tuple[str, ...]
    index: RuleIndex
    source: str = ""

    @property
    def versions(self) -> tuple[RuleSet, ...]:
        return (self,)

    def at(self, day: date) -> RuleSet:
        return self

    def rule(self, rule_id: str) -> Rule:
        return self.rules[rule_id]


@dataclass(frozen=True, slots=True)
class RuleSetHistory:
    """Every version of one rule set, oldest first; ``at(day)`` is the version in force that day.

    A day before the first version's ``effective_from`` gets the first version (the engine does not
    model the law before 1 September 2014; the deadline is then flagged).
    """

    name: str
    versions: tuple[RuleSet, ...]
    _starts: tuple[int, ...]
    index: RuleIndex

    @classmethod
    def of(cls, versions: list[RuleSet]) -> RuleSetHistory:
        if not versions:
            raise RuleSetError("a rule-set history needs at least one version")
        ordered = sorted(versions, key=lambda r: r.effective_from)
        names = {r.name for r in ordered}
        if len(names) != 1:
            raise RuleSetError(f"versions of different rule sets mixed: {sorted(names)}")
        seen: dict[date, str] = {}
        for r in ordered:
            if r.effective_from in seen:
                raise RuleSetError(
                    f"{r.name}: versions {seen[r.effective_from]} and {r.version} share effective_from "
                    f"{r.effective_from}"
                )
            seen[r.effective_from] = r.version
        return cls(
            name=ordered[0].name,
            versions=tuple(ordered),
            _starts=tuple(r.effective_from.toordinal() for r in ordered),
            index=_merge_indexes([r.index for r in ordered]),
        )

    def at(self, day: date) -> RuleSet:
        i = bisect_right(self._starts, day.toordinal()) - 1
        return self.versions[max(i, 0)]

    def span(self, day: date) -> tuple[RuleSet, date, date]:
        """The version in force on ``day`` and the days it is in force: [first, end). The engine
        keeps the span of the last event's version and looks up again only outside it."""
        i = max(bisect_right(self._starts, day.toordinal()) - 1, 0)
        first = date.min if i == 0 else self.versions[i].effective_from
        end = self.versions[i + 1].effective_from if i + 1 < len(self.versions) else date.max
        return self.versions[i], first, end

    @property
    def latest(self) -> RuleSet:
        return self.versions[-1]


# -- loading ----------------------------------------------------------------------------------

_RULESET_KEYS = frozenset(
    {"name", "version", "effective_from", "title", "due_soon_working_days", "closing_events", "rules",
     "open_points", "description"}
)
_RULE_KEYS = frozenset(
    {"rule_id", "title", "section", "kind", "responsible", "legal_source", "convention", "period",
     "period_text", "flags", "exceptions", "open_points", "instance", "starts_on", "completed_by",
     "ended_by", "cancelled_by", "extended_by", "held_open_by", "released_by", "completed_by_trigger",
     "early_flag", "calculator", "params", "variant_field", "variants", "checks", "completion_not_recorded",
     "law_ref", "unconfirmed_exceptions"}
)
_VARIANT_KEYS = frozenset({"period", "convention", "legal_source", "period_text", "open_points"})
_MATCH_KEYS = frozenset({"type", "when", "date_field", "match_field", "select", "require_date", "instance_field"})


def _fail(where: str, message: str) -> RuleSetError:
    return RuleSetError(f"{where}: {message}")


def _period(raw: Any, where: str) -> Period:
    if not isinstance(raw, dict):
        raise _fail(where, "period must be a mapping with amount and unit")
    unit = raw.get("unit")
    if unit not in UNITS:
        raise _fail(where, f"period unit {unit!r} not in {sorted(UNITS)}")
    extra = set(raw) - {"amount", "unit", "beginning_with", "month", "day"}
    if extra:
        raise _fail(where, f"unknown period keys {sorted(extra)}")
    amount = raw.get("amount", 0)
    if not isinstance(amount, int) or amount < 0:
        raise _fail(where, "period amount must be a non-negative integer")
    if unit == "fixed_date" and not (isinstance(raw.get("month"), int) and isinstance(raw.get("day"), int)):
        raise _fail(where, "a fixed_date period needs month and day")
    return Period(amount, unit, bool(raw.get("beginning_with", False)), raw.get("month"), raw.get("day"))


def _conditions(raw: Any, where: str) -> Conditions:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise _fail(where, "when must map data fields to a value or a list of values")
    out = []
    for name in sorted(raw):
        value = raw[name]
        values = value if isinstance(value, list) else [value]
        out.append((str(name), frozenset(values)))
    return tuple(out)


def _matches(raw: Any, where: str) -> tuple[EventMatch, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(where, "expected a list of event matches")
    out = []
    for i, item in enumerate(raw):
        w = f"{where}[{i}]"
        if isinstance(item, str):
            item = {"type": item}
        if not isinstance(item, dict) or "type" not in item:
            raise _fail(w, "an event match needs a type")
        extra = set(item) - _MATCH_KEYS
        if extra:
            raise _fail(w, f"unknown keys {sorted(extra)}")
        if item["type"] not in CASE_EVENT_TYPES:
            raise _fail(w, f"unknown event type {item['type']!r}")
        select = item.get("select", "all")
        if select not in SELECTS:
            raise _fail(w, f"select must be one of {sorted(SELECTS)}")
        out.append(
            EventMatch(
                type=sys.intern(item["type"]),  # the same object as the records' types: lookups by identity
                when=_conditions(item.get("when"), w),
                date_field=item.get("date_field"),
                match_field=item.get("match_field"),
                select=select,
                require_date=bool(item.get("require_date", False)),
                instance_field=item.get("instance_field"),
                conditional=bool(item.get("when")) or bool(item.get("require_date", False))
                or bool(item.get("instance_field")),
            )
        )
    return tuple(out)


def _instance(raw: Any, where: str) -> InstanceSpec:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise _fail(where, "instance must be a mapping")
    spec = InstanceSpec(
        key=raw.get("key", "counter"),
        group=raw.get("group"),
        field=raw.get("field"),
        on_repeat=raw.get("on_repeat", "new"),
    )
    if spec.key not in INSTANCE_KEYS:
        raise _fail(where, f"instance key must be one of {sorted(INSTANCE_KEYS)}")
    if spec.on_repeat not in ON_REPEAT:
        raise _fail(where, f"on_repeat must be one of {sorted(ON_REPEAT)}")
    if spec.key == "episode" and not spec.group:
        raise _fail(where, "an episode instance needs a group")
    if spec.key == "field" and not spec.field:
        raise _fail(where, "a field instance needs a field")
    return spec


def _str_tuple(raw: Any, where: str, what: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _fail(where, f"{what} must be a list of strings")
    return tuple(raw)


def _explanation(period_text: str, legal_source: str) -> str:
    return f"{period_text} ({legal_source})"


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise _fail(where, "a rule must be a mapping")
    rule_id = raw.get("rule_id")
    if not isinstance(rule_id, str) or not rule_id:
        raise _fail(where, "rule_id is missing")
    where = f"{where} ({rule_id})"
    extra = set(raw) - _RULE_KEYS
    if extra:
        raise _fail(where, f"unknown keys {sorted(extra)}")
    for required in ("title", "kind", "responsible", "legal_source", "convention", "period", "period_text"):
        if required not in raw:
            raise _fail(where, f"{required} is missing")
    kind = raw["kind"]
    if kind not in KINDS:
        raise _fail(where, f"kind {kind!r} not in {sorted(KINDS)}")
    convention = raw["convention"]
    if convention not in CONVENTIONS:
        raise _fail(where, f"convention {convention!r} not in {CONVENTIONS}")
    calculator = raw.get("calculator")
    if calculator is not None and calculator not in CALCULATORS:
        raise _fail(where, f"unknown calculator {calculator!r}")
    exceptions = frozenset(_str_tuple(raw.get("exceptions"), where, "exceptions"))
    if not exceptions <= set(EXCEPTION_CODES):
        raise _fail(where, f"unknown exceptions {sorted(exceptions - set(EXCEPTION_CODES))}")
    unconfirmed_exceptions = frozenset(_str_tuple(raw.get("unconfirmed_exceptions"), where, "unconfirmed_exceptions"))
    if not unconfirmed_exceptions <= exceptions:
        raise _fail(where, "unconfirmed_exceptions must be among the rule's exceptions")
    checks = _str_tuple(raw.get("checks"), where, "checks")
    if not set(checks) <= CHECKS:
        raise _fail(where, f"unknown checks {sorted(set(checks) - CHECKS)}")
    flags = _str_tuple(raw.get("flags"), where, "flags")
    starts_on = _matches(raw.get("starts_on"), f"{where}.starts_on")
    if not starts_on:
        raise _fail(where, "starts_on is empty")
    completed_by = _matches(raw.get("completed_by"), f"{where}.completed_by")
    completed_by_trigger = bool(raw.get("completed_by_trigger", False))
    period = _period(raw["period"], where)
    if convention == "C5" and period.unit != "fixed_date":
        raise _fail(where, "C5 needs a fixed_date period")
    legal_source = str(raw["legal_source"])
    period_text = str(raw["period_text"])
    # A duty whose completion no event can show (none listed, or the listed ones cover only some
    # ways of doing it: `completion_not_recorded: true`) is never breached: a breach alert would
    # be a guess.
    not_recorded = bool(raw.get("completion_not_recorded", False)) or (
        not completed_by and not completed_by_trigger
    )
    never_breached = kind == DeadlineKind.GUIDANCE or (kind == DeadlineKind.DUTY and not_recorded)
    if kind == DeadlineKind.GUIDANCE and "guidance" not in flags:
        flags = ("guidance", *flags)
    if never_breached and kind == DeadlineKind.DUTY:
        flags = (*flags, "completion_not_recorded")
    rule = Rule(
        rule_id=rule_id,
        title=str(raw["title"]),
        section=str(raw.get("section", "")),
        kind=kind,
        responsible=str(raw["responsible"]),
        legal_source=legal_source,
        convention=convention,
        period=period,
        period_text=period_text,
        flags=flags,
        exceptions=exceptions,
        open_points=_str_tuple(raw.get("open_points"), where, "open_points"),
        instance=_instance(raw.get("instance"), where),
        starts_on=starts_on,
        completed_by=completed_by,
        ended_by=_matches(raw.get("ended_by"), f"{where}.ended_by"),
        cancelled_by=_matches(raw.get("cancelled_by"), f"{where}.cancelled_by"),
        extended_by=_matches(raw.get("extended_by"), f"{where}.extended_by"),
        held_open_by=_matches(raw.get("held_open_by"), f"{where}.held_open_by"),
        released_by=_matches(raw.get("released_by"), f"{where}.released_by"),
        completed_by_trigger=completed_by_trigger,
        early_flag=raw.get("early_flag"),
        calculator=calculator,
        params=MappingProxyType(dict(raw.get("params") or {})),
        variant_field=raw.get("variant_field"),
        checks=checks,
        law_ref=str(raw.get("law_ref", "")),
        unconfirmed_exceptions=unconfirmed_exceptions,
        explanation=_explanation(period_text, legal_source),
        never_breached=never_breached,
    )
    rule = replace(
        rule,
        **_lookups(rule),
        **_due(calculator, convention, period),
        start_extras=bool(rule.instance.group or rule.checks or rule.completed_by_trigger),
    )
    variants_raw = raw.get("variants")
    if variants_raw is not None:
        if not rule.variant_field or not isinstance(variants_raw, dict):
            raise _fail(where, "variants need a variant_field and a mapping of variants")
        variants: dict[str, Rule] = {}
        for key, v in variants_raw.items():
            vw = f"{where}.variants.{key}"
            if not isinstance(v, dict) or set(v) - _VARIANT_KEYS:
                raise _fail(vw, f"a variant may set only {sorted(_VARIANT_KEYS)}")
            v_period = _period(v["period"], vw) if "period" in v else rule.period
            v_convention = v.get("convention", rule.convention)
            if v_convention not in CONVENTIONS:
                raise _fail(vw, f"convention {v_convention!r} not in {CONVENTIONS}")
            v_source = str(v.get("legal_source", rule.legal_source))
            v_text = str(v.get("period_text", rule.period_text))
            variants[str(key)] = replace(
                rule,
                period=v_period,
                convention=v_convention,
                legal_source=v_source,
                period_text=v_text,
                open_points=rule.open_points + _str_tuple(v.get("open_points"), vw, "open_points"),
                explanation=_explanation(v_text, v_source),
                **_due(rule.calculator, v_convention, v_period),
            )
        rule = replace(rule, variants=MappingProxyType(variants))
    return rule


def _due(calculator: str | None, convention: str, period: Period) -> dict[str, Any]:
    if calculator is not None:
        return {"due_shift": None, "due_fn": None, "due_memo": {}}
    return {
        "due_shift": fixed_shift(convention, period),
        "due_fn": calendar_free_due(convention, period),
        "due_memo": {},
    }


ACTIONS = ("completed", "ended", "extended", "held", "released")


def _lookups(rule: Rule) -> dict[str, Any]:
    actions: dict[str, list[tuple[str, EventMatch]]] = {}
    groups = (rule.completed_by, rule.ended_by, rule.extended_by, rule.held_open_by, rule.released_by)
    for action, matches in zip(ACTIONS, groups, strict=True):
        for m in matches:
            actions.setdefault(m.type, []).append((action, m))
    cancels: dict[str, list[EventMatch]] = {}
    for m in rule.cancelled_by:
        cancels.setdefault(m.type, []).append(m)
    starts: dict[str, list[EventMatch]] = {}
    for m in rule.starts_on:
        starts.setdefault(m.type, []).append(m)
    # Plain dicts (not MappingProxyType): they are read on every event; nothing mutates them.
    return {
        "actions": {k: tuple(v) for k, v in actions.items()},
        "cancels": {k: tuple(v) for k, v in cancels.items()},
        "starts": {k: tuple(v) for k, v in starts.items()},
    }


def _build_index(rules: Mapping[str, Rule], closing: frozenset[str]) -> RuleIndex:
    starts: dict[str, list[Rule]] = {}
    acting: dict[str, list[str]] = {}
    cancelling: dict[str, list[str]] = {}
    for rule in rules.values():
        for m in rule.starts_on:
            if rule not in starts.setdefault(m.type, []):
                starts[m.type].append(rule)
        for group in (rule.completed_by, rule.ended_by, rule.extended_by, rule.held_open_by, rule.released_by):
            for m in group:
                if rule.rule_id not in acting.setdefault(m.type, []):
                    acting[m.type].append(rule.rule_id)
        for m in rule.cancelled_by:
            if rule.rule_id not in cancelling.setdefault(m.type, []):
                cancelling[m.type].append(rule.rule_id)
    return _index(
        {k: tuple(v) for k, v in starts.items()},
        {k: tuple(v) for k, v in acting.items()},
        {k: tuple(v) for k, v in cancelling.items()},
        closing,
    )


def _merge_indexes(indexes: list[RuleIndex]) -> RuleIndex:
    acting: dict[str, list[str]] = {}
    cancelling: dict[str, list[str]] = {}
    for ix in indexes:
        for src, dst in ((ix.acting, acting), (ix.cancelling, cancelling)):
            for t, ids in src.items():
                bucket = dst.setdefault(t, [])
                bucket.extend(i for i in ids if i not in bucket)
    # Starts are looked up in the version in force, never in the merged index; it only lists
    # every starting type (with no rules) so that the engine does not skip it.
    closing = frozenset().union(*(ix.closing for ix in indexes))
    starting_types: dict[str, tuple[Rule, ...]] = {t: () for ix in indexes for t in ix.starts}
    return _index(
        starting_types,
        {k: tuple(v) for k, v in acting.items()},
        {k: tuple(v) for k, v in cancelling.items()},
        closing,
    )


def parse_ruleset(raw: Any, source: str = "<memory>") -> RuleSet:
    """Build a :class:`RuleSet` from its parsed YAML/JSON document."""
    if not isinstance(raw, dict):
        raise _fail(source, "a rule set must be a mapping")
    extra = {k for k in raw if not str(k).startswith("x-")} - _RULESET_KEYS  # x-*: YAML anchors
    if extra:
        raise _fail(source, f"unknown keys {sorted(extra)}")
    for required in ("name", "version", "effective_from", "rules"):
        if required not in raw:
            raise _fail(source, f"{required} is missing")
    effective_from = raw["effective_from"]
    if isinstance(effective_from, str):
        effective_from = date.fromisoformat(effective_from)
    if not isinstance(effective_from, date):
        raise _fail(source, "effective_from must be a date")
    rules: dict[str, Rule] = {}
    for i, item in enumerate(raw["rules"] or []):
        rule = _rule(item, f"{source}: rules[{i}]")
        if rule.rule_id in rules:
            raise _fail(source, f"rule {rule.rule_id} defined twice")
        rules[rule.rule_id] = rule
    closing = frozenset(_str_tuple(raw.get("closing_events"), source, "closing_events"))
    if not closing <= CASE_EVENT_TYPES:
        raise _fail(source, f"unknown closing events {sorted(closing - CASE_EVENT_TYPES)}")
    due_soon = raw.get("due_soon_working_days", 10)
    if not isinstance(due_soon, int) or due_soon < 0:
        raise _fail(source, "due_soon_working_days must be a non-negative integer")
    frozen_rules = MappingProxyType(rules)
    return RuleSet(
        name=str(raw["name"]),
        version=str(raw["version"]),
        effective_from=effective_from,
        title=str(raw.get("title", "")),
        due_soon_working_days=due_soon,
        closing_events=closing,
        rules=frozen_rules,
        open_points=_str_tuple(raw.get("open_points"), source, "open_points"),
        index=_build_index(frozen_rules, closing),
        source=source,
    )


def load_ruleset_file(path: str | Path) -> RuleSet:
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    raw = json.loads(text) if p.suffix.lower() == ".json" else yaml.load(text, Loader=YAML_LOADER)  # noqa: S506
    return parse_ruleset(raw, source=str(p))


class RuleSetRegistry:
    """Every rule-set file of a directory (``*.yaml``, ``*.yml``, ``*.json``), grouped by name."""

    def __init__(self, directory: str | Path = RULESETS_DIR) -> None:
        self.directory = Path(directory)
        grouped: dict[str, list[RuleSet]] = {}
        for path in sorted(self.directory.iterdir()):
            if path.suffix.lower() in {".yaml", ".yml", ".json"} and path.is_file():
                rs = load_ruleset_file(path)
                grouped.setdefault(rs.name, []).append(rs)
        self._histories = {name: RuleSetHistory.of(v) for name, v in grouped.items()}

    def names(self) -> list[str]:
        return sorted(self._histories)

    def history(self, name: str) -> RuleSetHistory:
        try:
            return self._histories[name]
        except KeyError:
            raise RuleSetError(
                f"no rule set named {name!r} in {self.directory} (have: {', '.join(self.names()) or 'none'})"
            ) from None


@lru_cache(maxsize=8)
def _registry(directory: str) -> RuleSetRegistry:
    return RuleSetRegistry(directory)


def load_ruleset_history(name: str = "england", directory: str | Path | None = None) -> RuleSetHistory:
    """All versions of a rule set (the shipped ones unless ``directory`` is given)."""
    return _registry(str(directory or RULESETS_DIR)).history(name)


def load_ruleset(name: str = "england", on: date | None = None, directory: str | Path | None = None) -> RuleSet:
    """The version of rule set ``name`` in force on ``on`` (the latest version when ``on`` is None)."""
    history = load_ruleset_history(name, directory)
    return history.latest if on is None else history.at(on)
