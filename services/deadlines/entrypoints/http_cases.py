"""Case-level views of the deadlines read API, for the web front: one row per case (next due
date, counts of overdue, due-soon and exception deadlines), a case's history of events, and
counts by team and caseworker for managers' dashboards. Same bearer tokens and scopes as
``http.py``; every figure is one SQL aggregate, so a page of a caseworker's 200 cases or a
council of 20,000 cases is one query, not thousands of deadlines over HTTP."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import Integer, Select, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.deadlines.adapters import tables
from services.deadlines.entrypoints.http_scope import AUTH_RESPONSES, Who, within_scope
from services.deadlines.service_layer.reports import timeliness_figures
from services.deadlines.service_layer.timers import london_today

OPEN = ("open", "due_soon")


class CaseSummary(BaseModel):
    case_id: str
    team_id: str | None
    caseworker_id: str | None
    next_due_on: date | None = Field(description="The earliest due date of the case's open council duties.")
    overdue: int = Field(description="Breached deadlines, and open ones past their due date.")
    due_soon: int = Field(description="Open council duties due within the at-risk window (today included).")
    exceptions: int
    open: int


class CaseList(BaseModel):
    items: list[CaseSummary]
    total: int


class CaseEventOut(BaseModel):
    event_id: str
    type: str
    source: str
    occurred_on: date
    recorded_at: Any
    supersedes: str | None
    data: dict[str, Any]


class CaseHistory(BaseModel):
    case_id: str
    team_id: str | None
    caseworker_id: str | None
    area_id: str | None = None
    items: list[CaseEventOut]


class GroupCounts(BaseModel):
    team_id: str | None
    caseworker_id: str | None
    cases: int
    breached: int
    at_risk: int
    exceptions: int
    reviews_overdue: int


class Summary(BaseModel):
    as_of: date
    at_risk_until: date
    groups: list[GroupCounts]


def build_cases_router(sessions: async_sessionmaker[AsyncSession], calendar: Any, clock: Any) -> APIRouter:
    router = APIRouter(tags=["cases"], responses=AUTH_RESPONSES)
    d = tables.deadlines

    def window(working_days: int) -> tuple[date, date]:
        today = london_today(clock.now())
        return today, calendar.add_working_days(today, working_days) if working_days else today

    def duty_open() -> Any:
        return and_(d.c.status.in_(OPEN), d.c.kind == "duty")

    def review_overdue(today: date) -> Any:
        return and_(d.c.rule_id == "review.annual",
                    or_(d.c.status == "breached", and_(d.c.status.in_(OPEN), d.c.due_on < today)))

    def filtered(q: Select[Any], team_id: str | None, caseworker_id: str | None,
                 area_id: str | None = None) -> Select[Any]:
        if area_id:  # the area of each case is in the cases table (from ehc.case.assigned)
            q = q.where(d.c.case_id.in_(select(tables.cases.c.case_id).where(tables.cases.c.area_id == area_id)))
        if team_id:
            q = q.where(d.c.team_id == team_id)
        if caseworker_id:
            q = q.where(d.c.caseworker_id == caseworker_id)
        return q

    @router.get("/v1/cases", response_model=CaseList, summary="One row per case: next due date and counts")
    async def list_cases(who: Who, team_id: str | None = None, caseworker_id: str | None = None,
                         area_id: str | None = None, working_days: int = Query(10, ge=0, le=60),
                         only: str | None = Query(None, pattern="^(overdue|due_soon|exceptions|reviews_overdue)$"),
                         limit: int = Query(1000, ge=1, le=5000)) -> CaseList:
        today, until = window(working_days)
        overdue = _count_if(or_(d.c.status == "breached", and_(duty_open(), d.c.due_on < today)))
        due_soon = _count_if(and_(duty_open(), d.c.due_on >= today, d.c.due_on <= until))
        exceptions = _count_if(d.c.status == "exception")
        opened = _count_if(d.c.status.in_(OPEN))
        next_due = func.min(case((duty_open(), d.c.due_on), else_=None))
        reviews = _count_if(review_overdue(today))
        q = select(d.c.case_id, func.max(d.c.team_id).label("team_id"),
                   func.max(d.c.caseworker_id).label("caseworker_id"), next_due.label("next_due_on"),
                   overdue.label("overdue"), due_soon.label("due_soon"), exceptions.label("exceptions"),
                   opened.label("open")).group_by(d.c.case_id)
        q = who.restrict(filtered(q, team_id, caseworker_id, area_id), d)
        if only:
            q = q.having({"overdue": overdue, "due_soon": due_soon, "exceptions": exceptions,
                          "reviews_overdue": reviews}[only] > 0)
        q = q.order_by(next_due.is_(None), next_due, d.c.case_id).limit(limit)
        async with sessions() as session:
            rows = (await session.execute(q)).all()
        items = [CaseSummary.model_validate({k: (v if v is not None or k in ("team_id", "caseworker_id",
                                                                              "next_due_on") else 0)
                                             for k, v in r._mapping.items()}) for r in rows]
        return CaseList(items=items, total=len(items))

    @router.get("/v1/cases/{case_id}/events", response_model=CaseHistory,
                summary="A case's history of canonical events, oldest first")
    async def case_history(case_id: str, who: Who) -> CaseHistory:
        c, e = tables.cases, tables.case_events
        async with sessions() as session:
            routing = (await session.execute(select(c.c.team_id, c.c.caseworker_id, c.c.area_id)
                                             .where(c.c.case_id == case_id))).first()
            team_id, caseworker_id, area_id = routing if routing else (None, None, None)
            if not who.sees(team_id, caseworker_id):
                raise HTTPException(404, "no such case")
            rows = (await session.execute(select(e).where(e.c.case_id == case_id)
                                          .order_by(e.c.occurred_on, e.c.recorded_at, e.c.event_id))).all()
        if not rows and routing is None:
            raise HTTPException(404, "no such case")
        return CaseHistory(case_id=case_id, team_id=team_id, caseworker_id=caseworker_id, area_id=area_id,
                           items=[CaseEventOut.model_validate(r._mapping, from_attributes=False) for r in rows])

    @router.get("/v1/summary", response_model=Summary,
                summary="Counts by team and caseworker: cases, breached, at risk, exceptions, reviews overdue")
    async def summary(who: Who, team_id: str | None = None, caseworker_id: str | None = None,
                      area_id: str | None = None, working_days: int = Query(10, ge=0, le=60)) -> Summary:
        today, until = window(working_days)
        # one pass in the order of the covering index ix_deadlines_summary (team, caseworker, case), read
        # without the table's wide rows: each deadline counted where it belongs, each case once
        q = select(d.c.team_id, d.c.caseworker_id, func.count(d.c.case_id.distinct()).label("cases"),
                   *(cast(_count_if(condition), Integer).label(name) for name, condition in (
                       ("breached", d.c.status == "breached"), ("at_risk", and_(duty_open(), d.c.due_on <= until)),
                       ("exceptions", d.c.status == "exception"), ("reviews_overdue", review_overdue(today))))
                   ).group_by(d.c.team_id, d.c.caseworker_id).order_by(d.c.team_id, d.c.caseworker_id)
        q = who.restrict(filtered(q, team_id, caseworker_id, area_id), d)
        async with sessions() as session:
            rows = (await session.execute(q)).all()
        return Summary(as_of=today, at_risk_until=until,
                       groups=[GroupCounts.model_validate({k: v or 0 if k not in ("team_id", "caseworker_id") else v
                                                           for k, v in r._mapping.items()}) for r in rows])

    async def timeliness(who: Who, year: Annotated[int | None, Query(ge=1990, le=2100, description=(
                             "Plans issued in this calendar year (default: this year)"))] = None,
                         team_id: str | None = None, caseworker_id: str | None = None, area_id: str | None = None,
                         cases: Annotated[bool, Query(description="List the cases behind each figure")] = False,
                         ) -> dict[str, Any]:
        within_scope(who, team_id, caseworker_id)
        today = london_today(clock.now())
        return await timeliness_figures(
            sessions, year or today.year, today, with_cases=cases,
            restrict=lambda q: who.restrict(filtered(q, team_id, caseworker_id, area_id), d))

    router.add_api_route(
        "/v1/timeliness", timeliness, methods=["GET"], tags=["reports"],
        summary="The DfE 20-week figures of the plans issued in a year, and the last 12 months",
        description="With and without exceptions, beside England's 2025 figure, from the stored plan.final "
        "deadlines met: the same count as `ehc report timeliness`. `year` defaults to this year. Within the "
        "token's scope (a caseworker's cases, a team), narrowed by `team_id`, `caseworker_id` or `area_id`; "
        "with `cases=true`, the cases behind each figure. A year without plans carries a warning naming the "
        "years that hold some.")
    router.add_api_route(
        "/v1/reports/timeliness", timeliness, methods=["GET"], tags=["reports"], deprecated=True,
        summary="The same as /v1/timeliness (its earlier address, kept for existing clients)")

    return router


def _count_if(condition: Any) -> Any:
    """How many rows of the group meet the condition (SUM of CASE: the same SQL on either engine)."""
    return func.sum(case((condition, 1), else_=0))
