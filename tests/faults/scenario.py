"""Steps the fault tests share: build the workload, record the verdict and its figures."""

from __future__ import annotations

from tests.faults.conftest import FIGURES
from tests.faults.pipeline import Pipeline, london_today
from tests.faults.workload import Workload, make_workload


def workload_for(pipeline: Pipeline, cases: int, seed: int) -> Workload:
    return make_workload(pipeline.settings.kafka.topic_prefix.rstrip("."), cases, seed, london_today())


def events_in(messages: list[tuple[bytes, bytes]]) -> int:
    """The case events among messages for intake (the rest are contact updates)."""
    return sum(1 for _, value in messages if b'"ehc.contacts.updated"' not in value)


async def conclude(pipeline: Pipeline, workload: Workload) -> None:
    """Verify the invariants, add the figures to the report, and fail with every problem found."""
    verdict = await pipeline.verify(workload)
    FIGURES.append({**verdict.figures, "problems": verdict.problems})
    assert not verdict.problems, f"{pipeline.name}:\n- " + "\n- ".join(verdict.problems)
