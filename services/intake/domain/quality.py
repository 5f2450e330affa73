"""Data-quality warnings of an imported file, per case (issue 11, item 5).

``ehc intake import`` passes every canonical event it converts through :class:`FileQuality`, which
keeps only what the shared check (shared.data_quality) reads, and prints the warnings per file at
the end. The deadlines service runs the same check on the stored history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from shared.data_quality import DataQualityWarning, Fact, check_case

# The data fields the checks read (dates, and the keys that pair advice and consultations).
_FIELDS = ("served_on", "notice_sent_on", "meeting_on", "plan_made_on", "last_reviewed_on", "transfer_on",
           "advice_id", "institution_id")
MAX_SHOWN = 20


class FileQuality:
    """Collects the case events of one file and checks each case once the file is read."""

    def __init__(self) -> None:
        self._cases: dict[str, list[Fact]] = {}

    def tap(self, items: Iterable[Any]) -> Iterator[Any]:
        """Yield ``items`` unchanged, keeping what the check needs of each case event."""
        for item in items:
            data = getattr(item, "data", None)
            occurred_on = getattr(data, "occurred_on", None)
            if isinstance(occurred_on, date) and hasattr(item, "subject"):
                kept = {f: v for f in _FIELDS if (v := getattr(data, f, None)) is not None}
                self._cases.setdefault(item.subject, []).append(Fact(item.id, item.type, occurred_on, kept))
            yield item

    def warnings(self) -> dict[str, list[DataQualityWarning]]:
        """Each case's warnings (cases without any left out), by case id."""
        out = {}
        for case_id in sorted(self._cases):
            found = check_case(self._cases[case_id])
            if found:
                out[case_id] = found
        return out

    def summary_lines(self) -> list[str]:
        by_case = self.warnings()
        if not by_case:
            return ["  0 data-quality warnings"]
        total = sum(len(w) for w in by_case.values())
        lines = [f"  {total:,} data-quality warnings in {len(by_case):,} cases (dates that cannot all be true):"]
        codes = Counter(w.code for found in by_case.values() for w in found)
        lines.extend(f"    {count:>8,}  {code}" for code, count in codes.most_common())
        shown = [(case_id, w) for case_id, found in by_case.items() for w in found][:MAX_SHOWN]
        lines.extend(f"    case {case_id}: {w.code}: {w.message}" for case_id, w in shown)
        if total > len(shown):
            lines.append(f"    ... and {total - len(shown):,} more")
        return lines
