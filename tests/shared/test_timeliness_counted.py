"""The 20-week measure of groups of identical plans (a database's count by date pair) equals the
measure of the same plans one by one: every figure, the months, the exceptions, the unusable dates and
the years that hold plans (for the empty-year warning)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.timeliness import last_months, monthly_counted, monthly_figures, timeliness_counted, timeliness_of

START = date(2024, 1, 1)
plan = st.tuples(st.one_of(st.none(), st.integers(0, 900).map(lambda d: START + timedelta(days=d))),
                 st.one_of(st.none(), st.integers(0, 900).map(lambda d: START + timedelta(days=d))),
                 st.booleans())


@given(st.lists(plan, max_size=60), st.sampled_from([2024, 2025, 2026]))
def test_groups_count_as_their_plans(plans: list[tuple[date | None, date | None, bool]], year: int) -> None:
    groups = [(*key, n) for key, n in Counter(plans).items()]
    one_by_one, counted = timeliness_of(plans, year), timeliness_counted(groups, year)
    assert counted.to_dict() == one_by_one.to_dict()
    assert counted.plans_by_year == one_by_one.plans_by_year and counted.warnings == one_by_one.warnings
    months = last_months(date(2025, 8, 15))
    assert [(y, m, f.to_dict()) for y, m, f in monthly_counted(groups, months)] == [
        (y, m, f.to_dict()) for y, m, f in monthly_figures(plans, months)]
