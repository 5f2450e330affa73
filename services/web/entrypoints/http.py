"""The web front's pages (FastAPI, server-rendered Jinja with the GOV.UK Design System's macros).

Every page works without JavaScript: forms post and redirect; the trend chart is server-drawn
SVG with a table beside it. Staff pages need a signed-in session; families' pages need only the
signed link, and show that one case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChainableUndefined, ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from starlette.middleware.sessions import SessionMiddleware

from services.web.adapters.apis import NotFound, ServiceUnavailable
from services.web.domain import calendar_feed, views
from services.web.domain.people import Staff
from services.web.entrypoints.auth import SignInRequired, build_auth_router, check_csrf, csrf_token, require_staff
from services.web.service_layer.actions import (
    WebDeps,
    caseworker_of_calendar,
    family_message,
    has_calendar,
    open_family_link,
    open_short_link,
    record_exception,
    renew_calendar_secret,
    revoke_family_links,
    withdraw_exception,
)
from shared.family_links import SHORT_PATH, FamilyLinkRefused, link_url
from shared.http_ops import ReadinessCheck, ops_router
from shared.logging import get_logger

HERE = Path(__file__).resolve().parent.parent
ASSETS = HERE / "node_modules" / "govuk-frontend" / "dist" / "govuk"
log = get_logger(__name__)


def build_templates() -> Jinja2Templates:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(HERE / "templates"),
                             PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")})]),
        autoescape=True, undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["day"] = lambda d: "" if not d else (d if isinstance(d, date) else date.fromisoformat(str(d)[:10])
                                                      ).strftime("%-d %B %Y")
    env.globals["csrf_token"] = csrf_token
    env.globals["tag"] = views.status_tag
    return Jinja2Templates(env=env)


def build_web_app(deps: WebDeps, readiness: ReadinessCheck, team_names: Mapping[str, str] | None = None,
                  area_names: Mapping[str, str] | None = None) -> FastAPI:
    """``team_names``, ``area_names``: as staff know them (settings, shared with the notifier)."""
    cfg = deps.cfg
    templates = build_templates()
    templates.env.globals.update(council_name=cfg.council_name)

    def team_name(team_id: str | None) -> str:
        return views.known_as(team_names or {}, team_id, "Team")

    def area_name(area_id: str | None) -> str:
        return views.known_as(area_names or {}, area_id, "Area")

    templates.env.filters.update(team_name=team_name, area_name=area_name)
    app = FastAPI(title="EHC deadlines: web front", docs_url=None, redoc_url=None, openapi_url=None)
    secret = cfg.session_secret.get_secret_value() if cfg.session_secret else None
    if secret is None:
        if deps.environment == "production":
            raise ValueError("EHC_WEB__SESSION_SECRET is required in production")
        secret = "local-development-session-secret-not-for-use"
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie="ehc_session",
                       max_age=cfg.session_max_age_seconds, same_site="lax",
                       https_only=cfg.secure_cookies)
    app.include_router(ops_router(readiness))
    app.include_router(build_auth_router(cfg, deps.environment, templates))
    assets = cfg.assets_dir or ASSETS
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets / "assets"), name="assets")
        app.mount("/govuk", StaticFiles(directory=assets), name="govuk")
    else:
        log.warning("web.no_assets", problem=f"{assets} is missing: run make (npm install) or set EHC_WEB__ASSETS_DIR")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def today() -> date:
        return views.london_day(deps.clock())

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        staff = context.get("staff")
        return templates.TemplateResponse(request, name, {"staff": staff, **context}, status_code=status_code)

    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/sign-in?" + urlencode({"next": exc.next_url}), 303)

    @app.exception_handler(HTTPException)
    async def error_page(request: Request, exc: HTTPException) -> Response:
        titles = {401: "Sign-in failed", 403: "You cannot see this page", 404: "Page not found",
                  503: "Sorry, there is a problem with the service"}
        return page(request, "message.html", exc.status_code, title=titles.get(exc.status_code, "There is a problem"),
                    body=str(exc.detail), staff=None)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> Response:
        log.warning("web.service_unavailable", error=str(exc))
        return page(request, "message.html", 503, title="Sorry, there is a problem with the service",
                    body="Part of the service is not answering. Nothing was changed. Try again in a few minutes.")

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if not request.url.path.startswith(("/assets", "/govuk", "/static")):
            response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"  # family links never leak through Referer
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # --- staff: cases -------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        staff = require_staff(request)
        return RedirectResponse("/cases" if staff.caseworker_id else "/dashboard", 303)

    @app.get("/cases", response_class=HTMLResponse)
    async def my_cases(request: Request, only: str | None = None) -> Response:
        staff = require_staff(request)
        if not staff.caseworker_id:
            return RedirectResponse("/dashboard", 303)
        items = await deps.deadlines.cases(caseworker_id=staff.caseworker_id, only=only)
        return page(request, "cases.html", staff=staff, title="My cases", cases=views.case_rows(items),
                    only=only, today=today(), nav="cases")

    async def visible_case(staff: Staff, case_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        try:
            history, deadlines = await asyncio.gather(deps.deadlines.case_history(case_id),
                                                      deps.deadlines.case_deadlines(case_id))
        except NotFound:
            raise HTTPException(404, "There is no case with this reference.") from None
        team_id = history.get("team_id") or next((d["team_id"] for d in deadlines if d.get("team_id")), None)
        caseworker_id = history.get("caseworker_id") or next(
            (d["caseworker_id"] for d in deadlines if d.get("caseworker_id")), None)
        if not staff.can_see(team_id, caseworker_id, history.get("area_id")):
            log.warning("web.case_refused", case_id=case_id)
            raise HTTPException(403, "This case belongs to another caseworker's or team's list.")
        return history, deadlines

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    async def case_page(request: Request, case_id: str, done: str | None = None) -> Response:
        staff = require_staff(request)
        history, deadlines = await visible_case(staff, case_id)
        notifications, messages = await asyncio.gather(deps.notifier.case_notifications(case_id),
                                                       deps.notifier.family_messages(case_id))
        rows = views.deadline_rows(deadlines, today())
        events = [{**e, "words": views.words_for_event(e["type"]), "details": views.event_details(e["type"], e["data"])}
                  for e in history["items"]]
        exceptions = {r.exception_event_id: r for r in rows if r.exception_event_id}
        return page(request, "case.html", staff=staff, title=f"Case {case_id}", case_id=case_id, history=history,
                    deadlines=rows, events=events, notifications=notifications, messages=messages,
                    topics=views.FAMILY_TOPICS, exception_codes=views.EXCEPTIONS, open_exceptions=exceptions,
                    today=today(), done=done, nav="cases", error=request.session.pop("case_error", None),
                    family_link=link_url(cfg.base_url, deps.family_secret, case_id),
                    family_link_days=cfg.family_link_days)

    @app.post("/cases/{case_id}/exceptions")
    async def add_exception(request: Request, case_id: str) -> Response:
        staff = require_staff(request)
        form = await check_csrf(request)
        await visible_case(staff, case_id)
        rule_ids = form.get("rule_ids") or []
        rule_ids = [rule_ids] if isinstance(rule_ids, str) else list(rule_ids)
        try:
            await record_exception(deps, case_id, str(form.get("exception") or ""), rule_ids,
                                   str(form.get("reason") or ""))
        except ValueError as exc:
            return case_with_error(request, case_id, str(exc))
        return RedirectResponse(f"/cases/{case_id}?done=exception", 303)

    @app.post("/cases/{case_id}/exceptions/withdraw")
    async def remove_exception(request: Request, case_id: str) -> Response:
        staff = require_staff(request)
        form = await check_csrf(request)
        await visible_case(staff, case_id)
        try:
            await withdraw_exception(deps, case_id, str(form.get("exception_event_id") or ""))
        except ValueError as exc:
            return case_with_error(request, case_id, str(exc))
        return RedirectResponse(f"/cases/{case_id}?done=withdrawn", 303)

    @app.post("/cases/{case_id}/family-link/revoke")
    async def revoke_links(request: Request, case_id: str) -> Response:
        staff = require_staff(request)
        await check_csrf(request)
        await visible_case(staff, case_id)
        await revoke_family_links(deps, case_id)
        return RedirectResponse(f"/cases/{case_id}?done=revoked", 303)

    def case_with_error(request: Request, case_id: str, error: str) -> Response:
        request.session["case_error"] = error
        return RedirectResponse(f"/cases/{case_id}#exceptions", 303)

    # --- staff: calendar ----------------------------------------------------------------------

    @app.get("/calendar", response_class=HTMLResponse)
    async def calendar_page(request: Request) -> Response:
        staff = require_staff(request)
        if not staff.caseworker_id:
            raise HTTPException(403, "Calendar feeds are for caseworkers.")
        feed = request.session.pop("feed_secret", None)
        return page(request, "calendar.html", staff=staff, title="Your deadlines in your calendar", nav="calendar",
                    has_feed=await has_calendar(deps, staff.caseworker_id),
                    feed_url=f"{cfg.base_url.rstrip('/')}/calendar/{feed}.ics" if feed else None)

    @app.post("/calendar/renew")
    async def calendar_renew(request: Request) -> Response:
        staff = require_staff(request)
        await check_csrf(request)
        if not staff.caseworker_id:
            raise HTTPException(403, "Calendar feeds are for caseworkers.")
        request.session["feed_secret"] = await renew_calendar_secret(deps, staff.caseworker_id)
        return RedirectResponse("/calendar", 303)

    @app.get("/calendar/{secret}.ics")
    async def calendar_feed_ics(secret: str) -> Response:
        caseworker_id = await caseworker_of_calendar(deps, secret)
        if caseworker_id is None:
            return PlainTextResponse("This calendar address is no longer valid.", 404)
        items = await deps.deadlines.deadlines(caseworker_id=caseworker_id, status=["open", "due_soon", "breached",
                                                                                     "exception"])
        body = calendar_feed.ics(items, cfg.base_url, cfg.council_name, deps.clock())
        return Response(body, media_type="text/calendar; charset=utf-8")

    # --- managers -----------------------------------------------------------------------------

    def manager_scope(staff: Staff, team_id: str | None, area_id: str | None = None) -> tuple[str | None, str | None]:
        """(team, area) the manager asked for and may see; (None, None) is the whole council."""
        if not staff.is_manager:
            raise HTTPException(403, "The dashboard is for managers.")
        everything = staff.admin or staff.council
        if team_id and not (everything or team_id in staff.teams):
            raise HTTPException(403, "This team is not yours.")
        if area_id and not (everything or area_id in staff.areas):
            raise HTTPException(403, "This area is not yours.")
        if team_id or area_id or everything:
            return team_id, (None if team_id else area_id)
        if len(staff.teams) + len(staff.areas) == 1:
            return (next(iter(staff.teams), None), next(iter(staff.areas), None))
        raise HTTPException(400, "Choose one of your teams or areas.")

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard(request: Request, team_id: str | None = None, area_id: str | None = None) -> Response:
        staff = require_staff(request)
        scope, area = manager_scope(staff, team_id, area_id)
        summary, figures = await asyncio.gather(deps.deadlines.summary(team_id=scope, area_id=area),
                                                deps.deadlines.timeliness(team_id=scope, area_id=area))
        groups = summary["groups"]
        teams: dict[str | None, dict[str, int]] = {}
        for g in groups:
            t = teams.setdefault(g["team_id"], {k: 0 for k in ("cases", "breached", "at_risk", "exceptions",
                                                                "reviews_overdue")})
            for k in t:
                t[k] += g[k]
        totals = {k: sum(t[k] for t in teams.values()) for k in ("cases", "breached", "at_risk", "exceptions",
                                                                  "reviews_overdue")}
        return page(request, "dashboard.html", staff=staff, title="Dashboard", nav="dashboard", scope=scope, area=area,
                    groups=groups, teams=teams, totals=totals, figures=figures, summary=summary,
                    chart=views.trend_chart(figures["months"]), my_teams=sorted(staff.teams),
                    my_areas=sorted(staff.areas),
                    counted_at=views.london_time(summary["computed_at"]))

    @app.get("/dashboard/cases", response_class=HTMLResponse)
    async def dashboard_cases(request: Request, team_id: str | None = None, caseworker_id: str | None = None,
                              area_id: str | None = None, only: str | None = None) -> Response:
        staff = require_staff(request)
        scope, area = manager_scope(staff, team_id, area_id)
        if only not in (None, "overdue", "due_soon", "exceptions", "reviews_overdue"):
            raise HTTPException(404)
        items = await deps.deadlines.cases(team_id=scope, area_id=area, caseworker_id=caseworker_id, only=only)
        label = {"overdue": "with overdue deadlines", "due_soon": "with deadlines due soon",
                 "exceptions": "with exceptions", "reviews_overdue": "with an annual review overdue"
                 }.get(only or "", "")
        where = (f"caseworker {caseworker_id}" if caseworker_id else team_name(scope) if scope
                 else area_name(area) if area else "the council")
        return page(request, "cases.html", staff=staff, title=f"Cases {label} ({where})".replace("  ", " "),
                    cases=views.case_rows(items), only=only, today=today(), nav="dashboard", drill=True)

    @app.get("/dashboard/subscriptions", response_class=HTMLResponse)
    async def subscriptions(request: Request, error: str | None = None) -> Response:
        staff = require_staff(request)
        if not staff.is_manager:
            raise HTTPException(403, "Breach alerts are managed by managers.")
        mine = [s for s in await deps.notifier.subscriptions() if staff.admin or s["manager_ref"] == staff.subject]
        return page(request, "subscriptions.html", staff=staff, title="Breach alerts", nav="dashboard",
                    subscriptions=mine, error=error, teams=sorted(staff.teams), areas=sorted(staff.areas),
                    whole_council=staff.admin or staff.council)

    @app.post("/dashboard/subscriptions")
    async def subscribe(request: Request) -> Response:
        staff = require_staff(request)
        form = await check_csrf(request)
        kind, _, wanted = str(form.get("scope") or "").partition(":")
        team, area = manager_scope(staff, wanted if kind == "team" else None, wanted if kind == "area" else None)
        scope = "team" if team else "area" if area else "all"
        spec = {"manager_ref": staff.subject, "scope": scope, "scope_id": team or area,
                "kind": str(form.get("kind") or "breach"), "channel": str(form.get("channel") or "email"),
                "address": str(form.get("address") or "")}
        try:
            await deps.notifier.add_subscription(spec)
        except ValueError as exc:
            return await subscriptions(request, error=str(exc))
        return RedirectResponse("/dashboard/subscriptions", 303)

    @app.post("/dashboard/subscriptions/{subscription_id}/delete")
    async def unsubscribe(request: Request, subscription_id: str) -> Response:
        staff = require_staff(request)
        await check_csrf(request)
        mine = {s["subscription_id"] for s in await deps.notifier.subscriptions()
                if staff.admin or s["manager_ref"] == staff.subject}
        if subscription_id not in mine:
            raise HTTPException(404, "No such subscription.")
        await deps.notifier.remove_subscription(subscription_id)
        return RedirectResponse("/dashboard/subscriptions", 303)

    # --- families: the signed link of an email (/family/<token>) or a text's short link (/f/<code>) ---

    refused_words = "This link has expired or is not valid. Ask the council for a new one."

    async def family_case(opening: Any) -> Any:
        try:
            return await opening
        except FamilyLinkRefused as exc:
            log.info("web.family_link_refused", reason=exc.reason)
            raise HTTPException(403, refused_words) from None

    async def family_view(request: Request, link: Any, path: str, lang: str | None, sent: str | None) -> Response:
        language = lang if lang in ("en", "cy") else link.language
        try:
            history, deadlines = await asyncio.gather(deps.deadlines.case_history(link.case_id),
                                                      deps.deadlines.case_deadlines(link.case_id))
        except NotFound:
            raise HTTPException(404, "We cannot find this timeline. Ask the council for a new link.") from None
        timeline = views.family_timeline(deadlines, history["items"], today(), language)
        return page(request, "family.html", title="Your child's EHC timeline", link_path=path,
                    timeline=timeline, language=language, sent=sent, topics=views.FAMILY_TOPICS,
                    phone=cfg.council_phone, sendiass=cfg.sendiass_contact, t=views.FAMILY_WORDS[language])

    async def family_send(request: Request, link: Any, path: str) -> Response:
        form = await check_csrf(request)
        topic = str(form.get("topic") or "")
        if topic not in views.FAMILY_TOPICS:
            topic = "other"
        try:
            await family_message(deps, link.case_id, topic, str(form.get("message") or ""))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        lang = str(form.get("lang") or link.language)
        return RedirectResponse(f"{path}?sent=1&lang={'cy' if lang == 'cy' else 'en'}", 303)

    @app.get("/family/{token}", response_class=HTMLResponse)
    async def family_page(request: Request, token: str, lang: str | None = None, sent: str | None = None) -> Response:
        link = await family_case(open_family_link(deps, token))
        return await family_view(request, link, f"/family/{token}", lang, sent)

    @app.post("/family/{token}/message")
    async def family_post(request: Request, token: str) -> Response:
        link = await family_case(open_family_link(deps, token))
        return await family_send(request, link, f"/family/{token}")

    @app.get(SHORT_PATH + "{code}", response_class=HTMLResponse)
    async def short_family_page(request: Request, code: str, lang: str | None = None,
                                sent: str | None = None) -> Response:
        link = await family_case(open_short_link(deps, code))
        return await family_view(request, link, SHORT_PATH + code, lang, sent)

    @app.post(SHORT_PATH + "{code}/message")
    async def short_family_post(request: Request, code: str) -> Response:
        link = await family_case(open_short_link(deps, code))
        return await family_send(request, link, SHORT_PATH + code)

    return app
