"""The pure deadlines domain: events in, explained deadlines out. No I/O, no framework imports."""

from .calendar import CalendarError, Closure, TermCalendar, WorkingDayCalendar
from .engine import compute, compute_cases, compute_with_quality, data_quality, resolve_history
from .events import CASE_EVENT_TYPES, CaseEventRecord
from .model import Deadline, DeadlineKind, DeadlineStatus
from .rules import (
    Rule,
    RuleSet,
    RuleSetError,
    RuleSetHistory,
    RuleSetRegistry,
    load_ruleset,
    load_ruleset_history,
)

__all__ = [
    "CASE_EVENT_TYPES",
    "CalendarError",
    "CaseEventRecord",
    "Closure",
    "Deadline",
    "DeadlineKind",
    "DeadlineStatus",
    "Rule",
    "RuleSet",
    "RuleSetError",
    "RuleSetHistory",
    "RuleSetRegistry",
    "TermCalendar",
    "WorkingDayCalendar",
    "compute",
    "compute_cases",
    "compute_with_quality",
    "data_quality",
    "load_ruleset",
    "load_ruleset_history",
    "resolve_history",
]
