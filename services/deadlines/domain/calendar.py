"""Calendars the engine is given as configuration: working days (C7, C9) and term dates (C8, E1/E2).

Both are plain immutable-looking objects built once and passed to ``compute``; nothing here reads a
clock. The working-day calendar lives in ``shared.working_days`` (the notifier's digests use it
too) and is re-exported here; term calendars, which only the engine needs, are defined below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from shared.working_days import CalendarError, WorkingDayCalendar, parse_date, read_structured

__all__ = ["CalendarError", "Closure", "TermCalendar", "WorkingDayCalendar", "DEFAULT_TERMS_PATH"]

_CALENDARS_DIR = Path(__file__).parent / "calendars"
DEFAULT_TERMS_PATH = _CALENDARS_DIR / "default_terms.yaml"

@dataclass(frozen=True, slots=True)
class Closure:
    """A setting closed from ``first_day`` to ``last_day`` inclusive (it re-opens the day after)."""

    first_day: date
    last_day: date
    name: str = ""

    @property
    def length_days(self) -> int:
        return (self.last_day - self.first_day).days + 1


class TermCalendar:
    """Term closures of settings (law file C8): a default LA calendar plus per-setting overrides.

    E1/E2 (Regs 10(4)(a)-(b), 5(4)(a)): advice asked of a setting "in the window from one week
    before the first day of a closure of at least 4 continuous weeks to one week before it
    re-opens". A setting with an override uses only its own closures (an academy or an early
    years provider keeps its own dates).
    """

    __slots__ = ("_windows", "_default", "name")

    MIN_CLOSURE_DAYS = 28  # "at least 4 continuous weeks"
    LEAD_DAYS = 7  # "one week before"

    def __init__(
        self,
        default_closures: Sequence[Closure],
        setting_closures: Mapping[str, Sequence[Closure]] | None = None,
        name: str = "",
    ) -> None:
        self.name = name
        self._default = self._windows_of(default_closures)
        self._windows = {k: self._windows_of(v) for k, v in (setting_closures or {}).items()}

    @classmethod
    def _windows_of(cls, closures: Sequence[Closure]) -> tuple[tuple[int, int, Closure], ...]:
        windows = []
        for c in closures:
            if c.last_day < c.first_day:
                raise CalendarError(f"closure {c.name or c.first_day}: last_day before first_day")
            if c.length_days >= cls.MIN_CLOSURE_DAYS:
                reopens = c.last_day + timedelta(days=1)
                start = c.first_day - timedelta(days=cls.LEAD_DAYS)
                end = reopens - timedelta(days=cls.LEAD_DAYS)
                windows.append((start.toordinal(), end.toordinal(), c))
        windows.sort(key=lambda w: (w[0], w[1]))
        return tuple(windows)

    def closure_window_for(self, provider_id: str | None, day: date) -> Closure | None:
        """The long closure whose E1/E2 window contains ``day`` for that setting, if any."""
        windows = self._windows.get(provider_id, self._default) if provider_id else self._default
        o = day.toordinal()
        for start, end, closure in windows:
            if start > o:
                break
            if o <= end:
                return closure
        return None

    def closure_window_contains(self, provider_id: str | None, day: date) -> bool:
        """True when advice asked of that setting on ``day`` falls in an E1/E2 window."""
        return self.closure_window_for(provider_id, day) is not None

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> TermCalendar:
        """Load a term calendar (YAML or JSON); ``None`` loads the shipped example calendar."""
        p = Path(path) if path is not None else DEFAULT_TERMS_PATH
        raw = read_structured(p)
        if not isinstance(raw, dict):
            raise CalendarError(f"{p}: expected a mapping with 'closures' and optional 'settings'")
        default = _closures(raw.get("closures") or [], f"{p}: closures")
        settings_raw = raw.get("settings") or {}
        if not isinstance(settings_raw, dict):
            raise CalendarError(f"{p}: 'settings' must map provider ids to closures")
        settings: dict[str, list[Closure]] = {}
        for provider_id, entry in settings_raw.items():
            items = entry.get("closures") if isinstance(entry, dict) else entry
            settings[str(provider_id)] = _closures(items or [], f"{p}: settings.{provider_id}")
        return cls(default, settings, name=str(raw.get("name", "")))


def _closures(items: Any, where: str) -> list[Closure]:
    if not isinstance(items, list):
        raise CalendarError(f"{where}: expected a list")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "first_day" not in item or "last_day" not in item:
            raise CalendarError(f"{where}[{i}]: expected first_day and last_day")
        out.append(
            Closure(
                parse_date(item["first_day"], f"{where}[{i}].first_day"),
                parse_date(item["last_day"], f"{where}[{i}].last_day"),
                str(item.get("name", "")),
            )
        )
    return out
