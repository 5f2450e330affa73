"""Staff sign-in: OpenID Connect (Authlib's Starlette client: signature, issuer, audience and
nonce of the ID token checked), a development sign-in for ``ehc run`` only (refused in
production), signed sessions that expire, and a CSRF token on every form."""

from __future__ import annotations

import hmac
import secrets
import time
import warnings
from typing import Any

import authlib.deprecate
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from services.web.domain.people import Staff, staff_from_claims, staff_from_roles
from shared.logging import get_logger
from shared.settings import WebSettings

# Authlib 1.9 warns at import, always, that it falls back from its httpx2 fork to httpx: the client
# this project installs and pins. Nothing a council can act on, so it stays out of every start's
# output (authlib.deprecate, imported first, sets its "always"; this filter, added after, wins).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated",
                            category=authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, OAuthError

log = get_logger(__name__)


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


async def check_csrf(request: Request) -> dict[str, Any]:
    """The form, once its CSRF token matches the session's (403 otherwise)."""
    form = await request.form()
    sent = str(form.get("csrf_token") or "")
    expected = str(request.session.get("csrf") or "")
    if not expected or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, "This form has expired. Go back, reload the page and try again.")
    return {k: form.getlist(k) if len(form.getlist(k)) > 1 else form.get(k) for k in form}


def current_staff(request: Request) -> Staff | None:
    data = request.session.get("staff")
    if not data or float(request.session.get("expires_at", 0)) < time.time():
        return None
    return Staff.from_session(data)


def require_staff(request: Request) -> Staff:
    staff = current_staff(request)
    if staff is None:
        raise SignInRequired(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
    return staff


def _safe_next(value: Any) -> str:
    text = str(value or "/")
    return text if text.startswith("/") and not text.startswith("//") else "/"


def _start_session(request: Request, staff: Staff, cfg: WebSettings) -> None:
    request.session.clear()
    request.session["staff"] = staff.to_session()
    request.session["expires_at"] = time.time() + cfg.session_max_age_seconds
    request.session["csrf"] = secrets.token_urlsafe(32)


def build_auth_router(cfg: WebSettings, environment: str, templates: Any) -> APIRouter:
    router = APIRouter()
    oauth = OAuth()
    if cfg.oidc_metadata_url:
        oauth.register("idp", server_metadata_url=cfg.oidc_metadata_url, client_id=cfg.oidc_client_id,
                       client_secret=cfg.oidc_client_secret.get_secret_value() if cfg.oidc_client_secret else None,
                       client_kwargs={"scope": cfg.oidc_scope})
    dev_allowed = cfg.dev_sign_in and environment != "production"

    @router.get("/sign-in", include_in_schema=False)
    async def sign_in(request: Request, next: str = "/") -> Response:
        request.session["next"] = _safe_next(next)
        if cfg.oidc_metadata_url:
            return await oauth.idp.authorize_redirect(request, cfg.base_url.rstrip("/") + "/auth/callback")
        if dev_allowed:
            return RedirectResponse("/dev-sign-in", 303)
        raise HTTPException(503, "Sign-in is not set up: EHC_WEB__OIDC_METADATA_URL is empty.")

    @router.get("/auth/callback", include_in_schema=False)
    async def callback(request: Request) -> Response:
        try:
            token = await oauth.idp.authorize_access_token(request)
        except OAuthError as exc:
            log.warning("web.sign_in_failed", error=exc.error)
            raise HTTPException(401, "Sign-in failed. Try again.") from None
        claims = token.get("userinfo") or {}
        staff = staff_from_claims(claims, roles_claim=cfg.oidc_roles_claim, caseworker_claim=cfg.oidc_caseworker_claim,
                                  mapping=cfg.role_mapping)
        if staff is None:
            log.warning("web.sign_in_refused", reason="no known role")
            raise HTTPException(403, "Your account has no role in this service. Ask your administrator.")
        next_url = _safe_next(request.session.get("next"))
        _start_session(request, staff, cfg)
        log.info("web.signed_in", roles=staff.role_names)
        return RedirectResponse(next_url, 303)

    @router.get("/dev-sign-in", include_in_schema=False)
    async def dev_form(request: Request) -> Response:
        if not dev_allowed:
            raise HTTPException(404)
        return templates.TemplateResponse(request, "dev_sign_in.html", {"title": "Sign in (local development)"})

    @router.post("/dev-sign-in", include_in_schema=False)
    async def dev_sign_in(request: Request) -> Response:
        if not dev_allowed:
            raise HTTPException(404)
        form = await check_csrf(request)
        who = str(form.get("who") or "").strip()
        roles = [r for r in str(form.get("roles") or "").split() if r]
        staff = staff_from_roles(who, who, roles, who) if who else None
        if staff is None:
            raise HTTPException(400, "Give a name and at least one role.")
        next_url = _safe_next(request.session.get("next"))
        _start_session(request, staff, cfg)
        return RedirectResponse(next_url, 303)

    @router.post("/sign-out", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        await check_csrf(request)
        request.session.clear()
        return RedirectResponse("/signed-out", 303)

    @router.get("/signed-out", include_in_schema=False)
    async def signed_out(request: Request) -> Response:
        return templates.TemplateResponse(request, "message.html", {
            "title": "You have signed out", "body": "Close this window, or sign in again."})

    return router
