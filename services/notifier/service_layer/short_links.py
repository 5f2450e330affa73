"""Short links in families' texts (issue 10): ``<web base url>/f/<code>``.

A text has no room for the signed link an email carries, so each text to a family gets a code of
its own, made when the text is claimed for sending. Only an HMAC of the code is stored
(``family_short_links``), with the case, the family's language, when it was made and when it
expires (the web front's family link lifetime); the plain code exists only in the message sent.
The web front asks what a code stands for (``resolve``) and treats the answer as a signed link;
revoking a case's family links marks its codes revoked. Every refusal (unknown, expired, revoked)
is the same ``None``: nothing tells a guesser which codes once existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters import tables
from shared.family_links import is_short_code, new_short_code, short_code_digest, short_link_url


@dataclass(frozen=True)
class ShortLinks:
    secret: str  # the family link secret (EHC_WEB__FAMILY_LINK_SECRET): the HMAC key
    base_url: str  # where families reach the web front
    lifetime: timedelta

    async def mint(self, session: AsyncSession, case_id: str, language: str, notification_id: str | None,
                   now: datetime) -> str:
        """A new code for one text, stored hashed in ``session``'s transaction; the link to send."""
        code = new_short_code()
        await session.execute(tables.family_short_links.insert().values(
            code_hmac=short_code_digest(self.secret, code), case_id=case_id,
            language=language if language in ("en", "cy") else "en", notification_id=notification_id,
            issued_at=now, expires_at=now + self.lifetime))
        return short_link_url(self.base_url, code)

    async def resolve(self, sessions: async_sessionmaker[AsyncSession], code: str, now: datetime
                      ) -> dict[str, Any] | None:
        """The case, language and issue time of a live code; None for anything else."""
        if not is_short_code(code):
            return None
        t = tables.family_short_links
        async with sessions() as session:
            row = (await session.execute(select(t.c.case_id, t.c.language, t.c.issued_at, t.c.expires_at)
                                         .where(t.c.code_hmac == short_code_digest(self.secret, code),
                                                t.c.revoked_at.is_(None)))).first()
        if row is None or _aware(row.expires_at) <= now:
            return None
        return {"case_id": row.case_id, "language": row.language, "issued_at": _aware(row.issued_at).isoformat(),
                "expires_at": _aware(row.expires_at).isoformat()}


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes: what was stored was UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def revoke_short_links(sessions: async_sessionmaker[AsyncSession], case_id: str, now: datetime) -> int:
    """Every live code of the case stops working (a text sent later gets a new one that works)."""
    t = tables.family_short_links
    async with sessions() as session, session.begin():
        result = await session.execute(update(t).where(t.c.case_id == case_id, t.c.revoked_at.is_(None))
                                       .values(revoked_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
