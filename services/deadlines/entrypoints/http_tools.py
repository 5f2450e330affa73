"""The deadlines read API's tools (issue 11), mounted on the read API by the composition root:

- ``POST /admin/rebuild/dry-run`` (admin): what a recomputation of the stored cases with this
  deployment's rule sets and calendar would publish, deadline by deadline, with the reason;
  nothing is written or published.

Authentication is the read API's (bearer token to role, see ``http.principal``).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from services.deadlines.entrypoints.http import Principal, principal
from services.deadlines.service_layer.changes import describe
from services.deadlines.service_layer.handlers import DeadlinesService

Who = Annotated[Principal, Depends(principal)]


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


def build_tools_router(service: DeadlinesService, batch: int = 500) -> APIRouter:
    router = APIRouter()

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
        for i in range(0, len(case_ids), batch):
            for case, change in await service.preview_cases(case_ids[i:i + batch]):
                described = describe(case, change)
                total += 1
                changed.add(case)
                by_change[described["change"]] += 1
                by_reason[described["reason"]] += 1
                if len(items) < limit:
                    items.append(described)
        return DryRun(cases=len(case_ids), changes=total, changed_cases=len(changed), by_change=dict(by_change),
                      by_reason=dict(by_reason), items=items, truncated=total > len(items))

    return router
