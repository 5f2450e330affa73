"""The deadlines read API's tools (issue 11), mounted on the read API by the composition root:

- ``POST /admin/rebuild/dry-run`` (admin): what a recomputation of the stored cases with this
  deployment's rule sets and calendar would publish, deadline by deadline, with the reason, and
  each case whose data-quality warnings would change (as the CLI's dry run shows them);
  nothing is written or published.
- ``GET /v1/what-if/forward``, ``/v1/what-if/backward``, ``/v1/what-if/dependents`` and
  ``/v1/cases/{case_id}/what-if/at-risk``: the what-if calculator (domain/what_if.py), every
  deadline explained as everywhere else (rule id, legal source, period in words).

Authentication is the read API's (bearer token to role, see ``http_scope``). The 20-week figures
are ``GET /v1/timeliness`` (``http_cases``; ``/v1/reports/timeliness`` is its earlier address).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.deadlines.domain.what_if import (
    WhatIfError,
    at_risk,
    backward,
    dependents,
    forward,
    parse_hypothesis,
    parse_step,
)
from services.deadlines.entrypoints.http_scope import Principal, Who
from services.deadlines.service_layer.changes import describe, describe_quality
from services.deadlines.service_layer.handlers import DeadlinesService
from services.deadlines.service_layer.timers import london_today


def admin(who: Who) -> Principal:
    if who.role != "admin":
        raise HTTPException(403, "this needs an admin token")
    return who


class DryRun(BaseModel):
    cases: int = Field(description="Cases recomputed")
    changes: int = Field(description="Deadline events a real recomputation would publish")
    changed_cases: int
    by_change: dict[str, int] = Field(description="added / moved / status / removed")
    by_reason: dict[str, int] = Field(description="events / ruleset / calendar / time")
    items: list[dict[str, Any]] = Field(description="Each change: case, deadline, rule, old and new due date and "
                                        "status, reason (at most `limit`)")
    truncated: bool
    data_quality_updates: int = Field(default=0, description="case.data_quality events a real recomputation would "
                                      "publish beside them (cases whose warnings would change)")
    data_quality: list[dict[str, Any]] = Field(default_factory=list, description="Each such update: case, stored "
                                               "and new warnings (at most `limit`)")


def build_tools_router(service: DeadlinesService, domain: Any, sessions: async_sessionmaker[AsyncSession],
                       batch: int = 500) -> APIRouter:
    """``domain``: the service's engine with its rule-set history and calendar (bootstrap.DomainEngine)."""
    router = APIRouter()

    def answer(compute: Any) -> Any:
        try:
            return compute()
        except WhatIfError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/v1/what-if/forward", tags=["what-if"],
                summary="If these events happen on these dates, when is each deadline")
    async def what_if_forward(
        _: Who,
        event: Annotated[list[str], Query(description="TYPE@YYYY-MM-DD[,field=value...], e.g. "
                                          "ehc.request.received@2026-03-02")],
        as_of: date | None = None,
    ) -> list[dict[str, Any]]:
        return answer(lambda: [d.to_dict() for d in forward([parse_hypothesis(e) for e in event], domain.ruleset,
                                                              domain.calendar, as_of)])

    @router.get("/v1/what-if/backward", tags=["what-if"],
                summary="To meet a date, by when must each step happen (searched with the engine)")
    async def what_if_backward(
        _: Who, by: date,
        step: Annotated[list[str], Query(description="EVENT_TYPE:RULE_ID in the order they happen, e.g. "
                                         "ehc.amendment.proposed:amendment.final")],
    ) -> list[dict[str, Any]]:
        return answer(lambda: [a.to_dict() for a in backward([parse_step(s) for s in step], by, domain.ruleset,
                                                             domain.calendar)])

    @router.get("/v1/what-if/dependents", tags=["what-if"],
                summary="The rules started by the completion of a rule (what a missed deadline delays)")
    async def what_if_dependents(_: Who, rule_id: str) -> list[dict[str, Any]]:
        return answer(lambda: [d.to_dict() for d in dependents(rule_id, domain.ruleset.latest)])

    @router.get("/v1/cases/{case_id}/what-if/at-risk", tags=["what-if"],
                summary="A deadline of a case is missed: the later deadlines it puts at risk")
    async def what_if_at_risk(case_id: str, who: Who, deadline_id: str,
                              completed_on: date | None = None) -> dict[str, Any]:
        history, (team_id, caseworker_id) = await service.case_history(case_id)
        if not history or not who.sees(team_id, caseworker_id):
            raise HTTPException(404, "no such case")
        today = london_today(service.clock.now())
        return answer(lambda: at_risk(history, deadline_id, domain.ruleset, domain.calendar, today,
                                      completed_on).to_dict())

    @router.post("/admin/rebuild/dry-run", response_model=DryRun, tags=["admin"],
                 summary="What a rebuild would change, per case, with old and new values and the reason")
    async def rebuild_dry_run(
        _: Annotated[Principal, Depends(admin)],
        case_id: Annotated[list[str] | None, Query(description="Only these cases (default: every case)")] = None,
        limit: Annotated[int, Query(ge=0, le=100_000)] = 1000,
    ) -> DryRun:
        case_ids = case_id or await service.all_case_ids()
        items: list[dict[str, Any]] = []
        by_change: Counter[str] = Counter()
        by_reason: Counter[str] = Counter()
        changed: set[str] = set()
        total = 0
        quality: list[dict[str, Any]] = []
        quality_updates = 0

        def on_quality(case: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
            nonlocal quality_updates
            quality_updates += 1
            if len(quality) < limit:
                quality.append(describe_quality(case, old, new))

        for i in range(0, len(case_ids), batch):
            for case, change in await service.preview_cases(case_ids[i:i + batch], on_quality=on_quality):
                described = describe(case, change)
                total += 1
                changed.add(case)
                by_change[described["change"]] += 1
                by_reason[described["reason"]] += 1
                if len(items) < limit:
                    items.append(described)
        return DryRun(cases=len(case_ids), changes=total, changed_cases=len(changed), by_change=dict(by_change),
                      by_reason=dict(by_reason), items=items,
                      truncated=total > len(items) or quality_updates > len(quality),
                      data_quality_updates=quality_updates, data_quality=quality)

    return router
