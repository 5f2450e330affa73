"""The deadlines read API (FastAPI): deadlines with their explanations, at-risk lists, breaches.

Bearer tokens map to a role, optionally scoped (settings ``api_tokens``): ``caseworker:<id>``
sees that caseworker's cases, ``manager`` or ``manager:<team_id>`` a team or all, ``admin`` all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.deadlines.adapters import tables
from services.deadlines.entrypoints.http_cases import build_cases_router
from services.deadlines.service_layer.timers import london_today
from shared.http_ops import ReadinessCheck, ops_router

Role = Literal["caseworker", "manager", "admin"]
STATUSES = ("open", "due_soon", "met", "met_late", "breached", "exception", "cancelled")


@dataclass(frozen=True)
class Principal:
    role: Role
    scope: str | None  # caseworker_id for caseworkers, team_id for a team manager


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


class Page(BaseModel):
    items: list[DeadlineOut]
    page: int
    page_size: int
    total: int


_bearer = HTTPBearer(auto_error=False)


def principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    tokens: dict[str, str] = request.app.state.tokens
    if credentials is None or credentials.credentials not in tokens:
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    role, _, scope = tokens[credentials.credentials].partition(":")
    if role not in ("caseworker", "manager", "admin"):
        raise HTTPException(403, "this token has no known role")
    return Principal(role, scope or None)  # type: ignore[arg-type]


Who = Annotated[Principal, Depends(principal)]
PageNo = Annotated[int, Query(ge=1)]
PageSize = Annotated[int, Query(ge=1, le=500)]


def build_api(sessions: async_sessionmaker[AsyncSession], tokens: dict[str, str], readiness: ReadinessCheck,
              calendar: Any, clock: Any) -> FastAPI:
    app = FastAPI(title="EHC deadlines", version="1",
                  description="Every statutory EHC deadline of every case, explained.")
    app.include_router(ops_router(readiness))
    app.state.tokens = tokens

    def scoped(q: Select[Any], who: Principal) -> Select[Any]:
        d = tables.deadlines
        if who.role == "caseworker":
            return q.where(d.c.caseworker_id == who.scope)
        if who.role == "manager" and who.scope:
            return q.where(d.c.team_id == who.scope)
        return q

    app.include_router(build_cases_router(sessions, calendar, clock, principal, scoped))

    async def page_of(q: Select[Any], page: int, page_size: int) -> Page:
        async with sessions() as session:
            total = await session.scalar(select(func.count()).select_from(q.subquery()))
            rows = (await session.execute(q.order_by(tables.deadlines.c.due_on, tables.deadlines.c.deadline_id)
                                          .offset((page - 1) * page_size).limit(page_size))).all()
        return Page(items=[DeadlineOut.model_validate(r._mapping) for r in rows], page=page, page_size=page_size,
                    total=int(total or 0))

    @app.get("/v1/cases/{case_id}/deadlines", response_model=Page, tags=["deadlines"],
             summary="Every deadline of one case, with its explanation and legal source")
    async def case_deadlines(case_id: str, who: Who, page: PageNo = 1, page_size: PageSize = 100) -> Page:
        q = scoped(select(tables.deadlines).where(tables.deadlines.c.case_id == case_id), who)
        return await page_of(q, page, page_size)

    @app.get("/v1/deadlines", response_model=Page, tags=["deadlines"], summary="Deadlines, filtered")
    async def list_deadlines(
        who: Who,
        status: Annotated[list[str] | None, Query(description=f"any of {', '.join(STATUSES)}")] = None,
        team_id: str | None = None, caseworker_id: str | None = None, rule_id: str | None = None,
        due_from: date | None = None, due_to: date | None = None, page: PageNo = 1, page_size: PageSize = 100,
    ) -> Page:
        d = tables.deadlines
        if status and not set(status) <= set(STATUSES):
            raise HTTPException(422, f"status must be among {', '.join(STATUSES)}")
        conds = [c for c in (
            d.c.status.in_(status) if status else None, d.c.team_id == team_id if team_id else None,
            d.c.caseworker_id == caseworker_id if caseworker_id else None,
            d.c.rule_id == rule_id if rule_id else None, d.c.due_on >= due_from if due_from else None,
            d.c.due_on <= due_to if due_to else None) if c is not None]
        return await page_of(scoped(select(d).where(and_(True, *conds)), who), page, page_size)

    @app.get("/v1/at-risk", response_model=Page, tags=["deadlines"],
             summary="Open council deadlines due within N working days (today included)")
    async def at_risk(who: Who, working_days: Annotated[int, Query(ge=0, le=60)] = 10, team_id: str | None = None,
                      page: PageNo = 1, page_size: PageSize = 100) -> Page:
        d = tables.deadlines
        today = london_today(clock.now())
        until = calendar.add_working_days(today, working_days) if working_days else today
        q = select(d).where(and_(d.c.status.in_(["open", "due_soon"]), d.c.due_on <= until, d.c.kind == "duty"))
        if team_id:
            q = q.where(d.c.team_id == team_id)
        return await page_of(scoped(q, who), page, page_size)

    @app.get("/v1/breaches", response_model=Page, tags=["deadlines"], summary="Breached deadlines")
    async def breaches(who: Who, team_id: str | None = None, page: PageNo = 1, page_size: PageSize = 100) -> Page:
        d = tables.deadlines
        q = select(d).where(d.c.status == "breached")
        if team_id:
            q = q.where(d.c.team_id == team_id)
        return await page_of(scoped(q, who), page, page_size)

    @app.middleware("http")
    async def no_store(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        return response

    return app
