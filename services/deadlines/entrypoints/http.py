"""The deadlines read API (FastAPI): deadlines with their explanations, at-risk lists, breaches.

Authentication and scopes (bearer token to a role, the scope applied to every route): see
``http_scope``. 401: no token or an unknown one; 403: a filter outside the token's scope.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.deadlines.adapters import tables
from services.deadlines.adapters.records import record_from_row
from services.deadlines.adapters.repository import DeadlinesRepository
from services.deadlines.domain.quality import case_warnings
from services.deadlines.entrypoints.http_cases import build_cases_router
from services.deadlines.entrypoints.http_scope import (  # noqa: F401 (Principal, principals: re-exported)
    AUTH_RESPONSES,
    Principal,
    Who,
    principal,
    principals,
    within_scope,
)
from services.deadlines.service_layer.timers import london_today
from shared.http_ops import ReadinessCheck, RequestLimits, ops_router

STATUSES = ("open", "due_soon", "met", "met_late", "breached", "exception", "cancelled")


class DeadlineOut(BaseModel):
    deadline_id: str
    case_id: str
    rule_id: str
    due_on: date
    status: str
    responsible: str
    kind: str
    team_id: str | None
    caseworker_id: str | None
    explanation: dict[str, Any] = Field(description="rule_id, trigger event and date, period in words, legal "
                                        "source, flags, exception, rule-set version")


class WarningOut(BaseModel):
    code: str = Field(description="Stable code, e.g. review_decision_before_meeting")
    severity: str = Field(description="warning or error")
    message: str = Field(description="What cannot be true, in plain English (no personal data)")
    event_ids: list[str] = Field(description="The events whose dates disagree")


class DataQualityOut(BaseModel):
    case_id: str
    problem: str | None = Field(default=None, description="What stops the case's deadlines being computed (also "
                                "among the warnings, as an error); null when they are computed")
    warnings: list[WarningOut] = Field(description="Data of the case that cannot be true (issue 11): its "
                                       "deadlines are still computed, but the dates named here need checking")


class ProblemOut(BaseModel):
    case_id: str
    problem: str = Field(description="What stops the case's deadlines being computed (a data-quality error to "
                         "correct at the source); the case keeps the deadlines it had.")
    team_id: str | None
    caseworker_id: str | None


class Page(BaseModel):
    items: list[DeadlineOut]
    page: int
    page_size: int
    total: int


MAX_PAGE = 100_000
PageNo = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageSize = Annotated[int, Query(ge=1, le=500)]


def build_api(sessions: async_sessionmaker[AsyncSession], tokens: dict[str, str], readiness: ReadinessCheck,
              calendar: Any, clock: Any, max_body_bytes: int = 1_000_000) -> FastAPI:
    """The read API; raises :class:`SettingsError` when a token cannot be used."""
    app = FastAPI(title="EHC deadlines", version="1",
                  description="Every statutory EHC deadline of every case, explained.")
    app.add_middleware(RequestLimits, max_body_bytes=max_body_bytes)
    app.include_router(ops_router(readiness))
    app.state.principals = principals(tokens)

    app.include_router(build_cases_router(sessions, calendar, clock))

    async def page_of(q: Select[Any], page: int, page_size: int) -> Page:
        async with sessions() as session:
            total = await session.scalar(select(func.count()).select_from(q.subquery()))
            rows = (await session.execute(q.order_by(tables.deadlines.c.due_on, tables.deadlines.c.deadline_id)
                                          .offset((page - 1) * page_size).limit(page_size))).all()
        return Page(items=[DeadlineOut.model_validate(r._mapping) for r in rows], page=page, page_size=page_size,
                    total=int(total or 0))

    @app.get("/v1/cases/{case_id}/deadlines", response_model=Page, tags=["deadlines"], responses=AUTH_RESPONSES,
             summary="Every deadline of one case, with its explanation and legal source")
    async def case_deadlines(case_id: str, who: Who, page: PageNo = 1, page_size: PageSize = 100) -> Page:
        q = who.restrict(select(tables.deadlines).where(tables.deadlines.c.case_id == case_id), tables.deadlines)
        return await page_of(q, page, page_size)

    @app.get("/v1/cases/{case_id}/data-quality", response_model=DataQualityOut, tags=["deadlines"],
             responses=AUTH_RESPONSES,
             summary="Data of one case that cannot be true (e.g. a review decision before its meeting)")
    async def case_data_quality(case_id: str, who: Who) -> DataQualityOut:
        c = tables.cases
        q = who.restrict(select(c.c.case_id, c.c.problem, c.c.data_quality).where(c.c.case_id == case_id), c)
        async with sessions() as session:
            case = (await session.execute(q)).one_or_none()
            if case is None:
                raise HTTPException(404, "no such case, or not one of yours")
            stored = case.data_quality
            if stored is None:  # not recomputed since the warnings were first stored: compute them now
                rows = (await DeadlinesRepository(session).case_events([case_id]))[case_id]
                stored = [w.to_dict() for w in case_warnings([record_from_row(r) for r in rows], case.problem)]
        # As stored when the case was last recomputed (and published as case.data_quality).
        return DataQualityOut(case_id=case_id, problem=case.problem, warnings=[WarningOut(**w) for w in stored])

    @app.get("/v1/problems", response_model=list[ProblemOut], tags=["cases"], responses=AUTH_RESPONSES,
             summary="Cases whose deadlines cannot be computed (data-quality problems), by case")
    async def problems(who: Who, case_id: str | None = None) -> list[ProblemOut]:
        c = tables.cases
        q = select(c).where(c.c.problem.is_not(None)).order_by(c.c.case_id).limit(1000)
        if case_id:
            q = q.where(c.c.case_id == case_id)
        q = who.restrict(q, c)
        async with sessions() as session:
            return [ProblemOut.model_validate(r._mapping) for r in (await session.execute(q)).all()]

    @app.get("/v1/deadlines", response_model=Page, tags=["deadlines"], responses=AUTH_RESPONSES,
             summary="Deadlines, filtered")
    async def list_deadlines(
        who: Who,
        status: Annotated[list[str] | None, Query(description=f"any of {', '.join(STATUSES)}")] = None,
        team_id: str | None = None, caseworker_id: str | None = None, rule_id: str | None = None,
        due_from: date | None = None, due_to: date | None = None, page: PageNo = 1, page_size: PageSize = 100,
    ) -> Page:
        d = tables.deadlines
        within_scope(who, team_id, caseworker_id)
        if status and not set(status) <= set(STATUSES):
            raise HTTPException(422, f"status must be among {', '.join(STATUSES)}")
        conds = [c for c in (
            d.c.status.in_(status) if status else None, d.c.team_id == team_id if team_id else None,
            d.c.caseworker_id == caseworker_id if caseworker_id else None,
            d.c.rule_id == rule_id if rule_id else None, d.c.due_on >= due_from if due_from else None,
            d.c.due_on <= due_to if due_to else None) if c is not None]
        return await page_of(who.restrict(select(d).where(and_(True, *conds)), d), page, page_size)

    @app.get("/v1/at-risk", response_model=Page, tags=["deadlines"], responses=AUTH_RESPONSES,
             summary="Open council deadlines due within N working days (today included)")
    async def at_risk(who: Who, working_days: Annotated[int, Query(ge=0, le=60)] = 10, team_id: str | None = None,
                      page: PageNo = 1, page_size: PageSize = 100) -> Page:
        d = tables.deadlines
        within_scope(who, team_id)
        today = london_today(clock.now())
        until = calendar.add_working_days(today, working_days) if working_days else today
        q = select(d).where(and_(d.c.status.in_(["open", "due_soon"]), d.c.due_on <= until, d.c.kind == "duty"))
        if team_id:
            q = q.where(d.c.team_id == team_id)
        return await page_of(who.restrict(q, d), page, page_size)

    @app.get("/v1/breaches", response_model=Page, tags=["deadlines"], responses=AUTH_RESPONSES,
             summary="Breached deadlines")
    async def breaches(who: Who, team_id: str | None = None, page: PageNo = 1, page_size: PageSize = 100) -> Page:
        d = tables.deadlines
        within_scope(who, team_id)
        q = select(d).where(d.c.status == "breached")
        if team_id:
            q = q.where(d.c.team_id == team_id)
        return await page_of(who.restrict(q, d), page, page_size)

    @app.middleware("http")
    async def no_store(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        return response

    return app
