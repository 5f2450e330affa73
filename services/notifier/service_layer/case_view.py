"""What the web front reads from the notifier about one case (notifications sent: kind, channel,
status; never an address), and families' messages: stored encrypted, the caseworker told at once
by email (the email says a message came and links to the case; the text stays here)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from services.notifier.adapters import tables
from services.notifier.domain.digests import case_url
from services.notifier.service_layer.notifications import (
    Deps,
    caseworker_of_case,
    caseworker_recipient,
    plan_notification,
)

FAMILY_TOPICS = {"question": "a question", "date_wrong": "a date on their timeline is wrong",
                 "not_received": "they never received something (for example the draft plan)",
                 "other": "something else"}


async def case_notifications(deps: Deps, case_id: str) -> list[dict[str, Any]]:
    n = tables.notifications
    async with deps.sessions() as session:
        rows = (await session.execute(
            select(n.c.notification_id, n.c.kind, n.c.template, n.c.recipient_kind, n.c.channel, n.c.status,
                   n.c.deadline_id, n.c.created_at, n.c.updated_at)
            .where(n.c.case_id == case_id).order_by(n.c.created_at, n.c.notification_id))).all()
    return [{**r._mapping, "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat()}
            for r in rows]


async def record_family_message(deps: Deps, case_id: str, topic: str, text: str) -> dict[str, Any]:
    """Store the message (encrypted) and plan the caseworker's email in one transaction."""
    if topic not in FAMILY_TOPICS:
        raise ValueError(f"topic must be one of {', '.join(FAMILY_TOPICS)}")
    message_id = str(uuid.uuid4())
    now = deps.clock()
    async with deps.sessions() as session, session.begin():
        await session.execute(tables.family_messages.insert().values(
            message_id=message_id, case_id=case_id, topic=topic, text_encrypted=deps.crypto.encrypt(text),
            created_at=now))
        recipient = await caseworker_recipient(session, deps.crypto, await caseworker_of_case(session, case_id))
        notified = None
        if recipient is not None:
            notified = await plan_notification(
                session, deps, key=f"family-message|{message_id}", case_id=case_id, deadline_id=None,
                kind="family_message", recipient=recipient, template="caseworker_family_message",
                context={"case_id": case_id, "case_url": case_url(deps.cfg.case_url_base, case_id),
                         "topic_words": FAMILY_TOPICS[topic]})
    if notified is not None:
        deps.wakeup.set()
    return {"message_id": message_id, "caseworker_told": notified is not None}


async def family_messages(deps: Deps, case_id: str) -> list[dict[str, Any]]:
    m = tables.family_messages
    async with deps.sessions() as session:
        rows = (await session.execute(select(m).where(m.c.case_id == case_id).order_by(m.c.created_at))).all()
    return [{"message_id": r.message_id, "topic": r.topic, "text": deps.crypto.decrypt(r.text_encrypted),
             "created_at": r.created_at.isoformat()} for r in rows]
