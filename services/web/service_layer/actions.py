"""What people do on the web front, as use cases over the other services' APIs and the web
front's own two tables. A change to a case is never written here: it becomes a canonical case
event through intake's signed webhook, so the case history stays the one source of truth."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.web.adapters import tables
from services.web.adapters.apis import DeadlinesApi, IntakeWebhook, NotifierApi
from shared.db import upsertable_insert
from shared.family_links import FamilyLink, FamilyLinkRefused, is_short_code, read_token, secret_from_settings
from shared.settings import WebSettings

EXCEPTION_CODES = ("E1", "E2", "E3", "E4", "E5")


@dataclass
class WebDeps:
    cfg: WebSettings
    environment: str
    deadlines: DeadlinesApi
    notifier: NotifierApi
    intake: IntakeWebhook
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]

    @property
    def family_secret(self) -> str:
        return secret_from_settings(self.cfg.family_link_secret, self.environment) or ""


def _event(event_type: str, case_id: str, now: datetime, **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"web-{uuid.uuid4()}", "source": "ehc/web", "type": event_type,
            "subject": case_id, "time": now.isoformat(), "datacontenttype": "application/json",
            "data": {"occurred_on": now.date().isoformat(), **data}}


async def record_exception(deps: WebDeps, case_id: str, exception: str, rule_ids: list[str], reason: str,
                           occurred_on: str | None = None) -> str:
    if exception not in EXCEPTION_CODES:
        raise ValueError("Choose which exception applies")
    if not rule_ids:
        raise ValueError("Choose at least one deadline")
    event = _event("ehc.exception.recorded", case_id, deps.clock(), exception=exception, rule_ids=rule_ids,
                   reason=reason.strip()[:500])
    if occurred_on:
        event["data"]["occurred_on"] = occurred_on
    await deps.intake.publish([event])
    return str(event["id"])


async def withdraw_exception(deps: WebDeps, case_id: str, exception_event_id: str) -> str:
    if not exception_event_id:
        raise ValueError("Choose the exception to withdraw")
    event = _event("ehc.exception.withdrawn", case_id, deps.clock(), exception_event_id=exception_event_id)
    await deps.intake.publish([event])
    return str(event["id"])


async def family_message(deps: WebDeps, case_id: str, topic: str, text: str) -> str:
    """The notifier keeps the text (encrypted) and tells the caseworker; the case history gets the topic."""
    text = text.strip()
    if not text:
        raise ValueError("Write your message")
    if len(text) > 2000:
        raise ValueError("Your message must be 2,000 characters or fewer")
    stored = await deps.notifier.family_message(case_id, topic, text)
    await deps.intake.publish([_event("ehc.family.message", case_id, deps.clock(), topic=topic,
                                      message_id=stored["message_id"])])
    return str(stored["message_id"])


# --- family links ------------------------------------------------------------------------------


async def open_family_link(deps: WebDeps, token: str) -> FamilyLink:
    return await _not_revoked(deps, read_token(deps.family_secret, token, deps.cfg.family_link_days * 86400))


async def open_short_link(deps: WebDeps, code: str) -> FamilyLink:
    """A text's short link (``/f/<code>``): the notifier says what it stands for; then it is held to
    exactly what a signed link is (its lifetime, the case's revocation)."""
    if not is_short_code(code):
        raise FamilyLinkRefused("malformed")
    found = await deps.notifier.resolve_short_link(code)
    if found is None:
        raise FamilyLinkRefused("unknown, expired or revoked")
    issued = datetime.fromisoformat(found["issued_at"]).astimezone(UTC)
    if (deps.clock() - issued).total_seconds() > deps.cfg.family_link_days * 86400:
        raise FamilyLinkRefused("expired")
    return await _not_revoked(deps, FamilyLink(str(found["case_id"]), str(found.get("language") or "en"), issued))


async def _not_revoked(deps: WebDeps, link: FamilyLink) -> FamilyLink:
    async with deps.sessions() as session:
        revoked = await session.scalar(select(tables.family_link_revocations.c.revoked_before)
                                       .where(tables.family_link_revocations.c.case_id == link.case_id))
    if revoked is not None and link.issued_at <= revoked.astimezone(UTC):
        raise FamilyLinkRefused("revoked")
    return link


async def revoke_family_links(deps: WebDeps, case_id: str) -> None:
    t = tables.family_link_revocations
    async with deps.sessions() as session, session.begin():
        stmt = upsertable_insert(session, t).values(case_id=case_id, revoked_before=deps.clock())
        await session.execute(stmt.on_conflict_do_update(index_elements=["case_id"],
                                                         set_={"revoked_before": stmt.excluded.revoked_before}))
    await deps.notifier.revoke_short_links(case_id)  # the texts' short links die with the notifier too


# --- calendar feeds ----------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def renew_calendar_secret(deps: WebDeps, caseworker_id: str) -> str:
    """A new secret for the caseworker's feed; the old address stops working at once."""
    secret = secrets.token_urlsafe(32)
    t = tables.calendar_feeds
    async with deps.sessions() as session, session.begin():
        await session.execute(delete(t).where(t.c.caseworker_id == caseworker_id))
        await session.execute(t.insert().values(caseworker_id=caseworker_id, secret_sha256=_digest(secret),
                                                created_at=deps.clock()))
    return secret


async def has_calendar(deps: WebDeps, caseworker_id: str) -> bool:
    t = tables.calendar_feeds
    async with deps.sessions() as session:
        return bool(await session.scalar(select(t.c.caseworker_id).where(t.c.caseworker_id == caseworker_id)))


async def caseworker_of_calendar(deps: WebDeps, secret: str) -> str | None:
    t = tables.calendar_feeds
    async with deps.sessions() as session:
        found = await session.scalar(select(t.c.caseworker_id).where(t.c.secret_sha256 == _digest(secret)))
    return str(found) if found else None


def now_utc() -> datetime:
    return datetime.now(UTC)
