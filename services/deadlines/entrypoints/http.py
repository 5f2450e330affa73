"""The deadlines read API (FastAPI): deadlines with their explanations, at-risk lists, breaches.

Bearer tokens map to a role, optionally scoped (settings ``api_tokens``): ``caseworker:<id>``
sees that caseworker's cases, ``manager`` or ``manager:<team_id>`` a team or all, ``admin`` all.
The tokens are checked when the API is built (a caseworker without an id, a manager with an empty
team, an unknown role: the service refuses to start) and looked up by their SHA-256, so the time a
request takes says nothing about how much of a token it guessed. 401: no token or an unknown one;
403: a filter outside the token's scope (another team or caseworker).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.deadlines.adapters import tables
from services.deadlines.service_layer.timers import london_today
from shared.http_ops import ReadinessCheck, RequestLimits, ops_router
from shared.settings import SettingsError

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


_bearer = HTTPBearer(auto_error=False)
_SETTING = "EHC_DEADLINES__API_TOKENS"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def principals(tokens: dict[str, str]) -> dict[bytes, Principal]:
    """Each configured token's principal, keyed by the token's SHA-256; :class:`SettingsError` (one line,
    naming the token by its position, never by its value) for a token the API cannot use."""
    found: dict[bytes, Principal] = {}
    for number, (token, grant) in enumerate(tokens.items(), start=1):
        where = f"{_SETTING}: token {number} of {len(tokens)}"
        role, colon, scope = (part.strip() for part in grant.partition(":"))
        if not token.strip():
            raise SettingsError(f"{where} is empty")
        if role == "caseworker" and not scope:
            raise SettingsError(f"{where}: a caseworker token is caseworker:<id> (the caseworker it belongs to)")
        if role == "manager" and colon and not scope:
            raise SettingsError(f"{where}: manager:<team> needs a team id (plain manager sees every team)")
        if role == "admin" and colon:
            raise SettingsError(f"{where}: admin takes no scope")
        if role not in ("caseworker", "manager", "admin"):
            raise SettingsError(f"{where} has no known role: use caseworker:<id>, manager, manager:<team> or admin")
        found[_digest(token)] = Principal(role, scope or None)  # type: ignore[arg-type]
    return found


def principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    known: dict[bytes, Principal] = request.app.state.principals
    who = known.get(_digest(credentials.credentials)) if credentials is not None else None
    if who is None:
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return who


def within_scope(who: Principal, team_id: str | None = None, caseworker_id: str | None = None) -> None:
    if who.role == "manager" and who.scope and team_id and team_id != who.scope:
        raise HTTPException(403, "this token sees one team's deadlines only")
    if who.role == "caseworker" and caseworker_id and caseworker_id != who.scope:
        raise HTTPException(403, "this token sees its own caseworker's deadlines only")


Who = Annotated[Principal, Depends(principal)]
MAX_PAGE = 100_000
PageNo = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageSize = Annotated[int, Query(ge=1, le=500)]
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or not one of EHC_DEADLINES__API_TOKENS"},
    403: {"description": "A filter outside the token's scope (another team or caseworker)"},
}


def build_api(sessions: async_sessionmaker[AsyncSession], tokens: dict[str, str], readiness: ReadinessCheck,
              calendar: Any, clock: Any, max_body_bytes: int = 1_000_000) -> FastAPI:
    """The read API; raises :class:`SettingsError` when a token cannot be used."""
    app = FastAPI(title="EHC deadlines", version="1",
                  description="Every statutory EHC deadline of every case, explained.")
    app.add_middleware(RequestLimits, max_body_bytes=max_body_bytes)
    app.include_router(ops_router(readiness))
    app.state.principals = principals(tokens)

    def scoped(q: Select[Any], who: Principal) -> Select[Any]:
        d = tables.deadlines
        if who.role == "caseworker":  # always scoped (checked at start)
            return q.where(d.c.caseworker_id == who.scope)
        if who.role == "manager" and who.scope:
            return q.where(d.c.team_id == who.scope)
        return q

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
        q = scoped(select(tables.deadlines).where(tables.deadlines.c.case_id == case_id), who)
        return await page_of(q, page, page_size)

    @app.get("/v1/problems", response_model=list[ProblemOut], tags=["cases"], responses=AUTH_RESPONSES,
             summary="Cases whose deadlines cannot be computed (data-quality problems), by case")
    async def problems(who: Who, case_id: str | None = None) -> list[ProblemOut]:
        c = tables.cases
        q = select(c).where(c.c.problem.is_not(None)).order_by(c.c.case_id).limit(1000)
        if case_id:
            q = q.where(c.c.case_id == case_id)
        if who.role == "caseworker":
            q = q.where(c.c.caseworker_id == who.scope)
        elif who.role == "manager" and who.scope:
            q = q.where(c.c.team_id == who.scope)
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
        return await page_of(scoped(select(d).where(and_(True, *conds)), who), page, page_size)

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
        return await page_of(scoped(q, who), page, page_size)

    @app.get("/v1/breaches", response_model=Page, tags=["deadlines"], responses=AUTH_RESPONSES,
             summary="Breached deadlines")
    async def breaches(who: Who, team_id: str | None = None, page: PageNo = 1, page_size: PageSize = 100) -> Page:
        d = tables.deadlines
        within_scope(who, team_id)
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
