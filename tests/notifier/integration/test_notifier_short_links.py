"""Issue 10: every text to a family carries a short link to their child's timeline,
``<web base url>/f/<code>``. The notifier keeps only an HMAC of the code (a read of its tables
reveals no live link), with the case, the family's language and an expiry; the web front asks the
notifier's API what a code stands for; revoking a case's family links kills its codes."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from services.notifier.adapters import tables
from tests.notifier.helpers import (
    FakeClock,
    assessment_agreed_and_sent,
    contacts_event,
    london,
    notification_rows,
)

pytestmark = pytest.mark.infra

CASE = "case-short"
WEB = "https://ehc.herts.gov.uk"
TOKEN = "tok-web-notifier"
PARENT = {"role": "parent", "name": "Alex Morgan", "phone": "07700 900111", "channel": "sms", "consent": True}
CARER = {"role": "carer", "name": "Sam Morgan", "email": "sam@example.org", "channel": "email", "consent": True,
         "language": "cy"}
SHORT = re.compile(re.escape(WEB) + r"/f/([A-Za-z0-9]{12})$")


async def family_text(make_notifier, *contacts: dict) -> tuple[object, str, str]:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 10, 0)), short_link_base=WEB,
                                admin_tokens=[TOKEN], family_link_base="https://herts.gov.uk/f")
    await built.service.handle_contacts([(CASE, contacts_event(CASE, *(contacts or (PARENT,))))])
    await assessment_agreed_and_sent(built, CASE)
    sms = built.sms.sent[0]
    found = SHORT.search(sms.body)
    assert found, sms.body
    return built, sms.body, found.group(1)


def api(built) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=built.notifier.api), base_url="http://notifier",
                             headers={"Authorization": f"Bearer {TOKEN}"})


async def resolve(built, code: str) -> httpx.Response:
    async with api(built) as client:
        return await client.post("/v1/family-links/resolve", json={"code": code})


async def test_a_family_text_carries_a_short_link_that_opens_the_case(make_notifier) -> None:
    built, body, code = await family_text(make_notifier)
    assert body == ("Hertfordshire County Council will carry out an EHC needs assessment. Any EHC plan is due "
                    f"by 3 July 2026. {WEB}/f/{code}")
    answer = await resolve(built, code)
    assert answer.status_code == 200
    found = answer.json()
    assert (found["case_id"], found["language"]) == (CASE, "en")
    assert found["issued_at"].startswith("2026-03-10T10:03")
    [row] = await notification_rows(built.sessions, channel="notify_sms")
    assert "link" not in row.context or code not in str(row.context)  # the stored context never holds the code


async def test_the_code_is_kept_only_as_a_keyed_hash(make_notifier) -> None:
    built, _, code = await family_text(make_notifier)
    async with built.sessions() as session:
        rows = (await session.execute(select(tables.family_short_links))).all()
    assert len(rows) == 1 and rows[0].case_id == CASE
    assert code not in repr(rows)
    assert len(rows[0].code_hmac) == 64


async def test_an_expired_or_revoked_or_unknown_code_gets_the_same_refusal(make_notifier) -> None:
    built, _, code = await family_text(make_notifier)
    unknown = await resolve(built, "A" * 12)
    malformed = await resolve(built, "not a code")
    assert unknown.status_code == malformed.status_code == 404
    assert unknown.json() == malformed.json()

    built.clock.advance(days=89)
    assert (await resolve(built, code)).status_code == 200
    built.clock.advance(days=1, hours=1, minutes=1)  # 90 days (EHC_WEB__FAMILY_LINK_DAYS) after, British Summer Time
    expired = await resolve(built, code)
    assert expired.status_code == 404 and expired.json() == unknown.json()


async def test_revoking_a_cases_family_links_kills_its_codes(make_notifier) -> None:
    built, _, code = await family_text(make_notifier)
    async with api(built) as client:
        revoked = await client.post(f"/v1/cases/{CASE}/family-links/revoke")
        other = await client.post("/v1/cases/another-case/family-links/revoke")
    assert revoked.status_code == 200 and revoked.json() == {"revoked": 1}
    assert other.json() == {"revoked": 0}
    refused = await resolve(built, code)
    assert refused.status_code == 404 and refused.json() == (await resolve(built, "B" * 12)).json()


async def test_the_api_needs_the_admin_token(make_notifier) -> None:
    built, _, code = await family_text(make_notifier)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=built.notifier.api),
                                 base_url="http://notifier") as client:
        assert (await client.post("/v1/family-links/resolve", json={"code": code})).status_code == 401
        assert (await client.post(f"/v1/cases/{CASE}/family-links/revoke")).status_code == 401


async def test_each_text_has_its_own_code_in_the_familys_language_and_emails_keep_the_signed_link(
        make_notifier) -> None:
    welsh_phone = {**PARENT, "phone": "07700 900222", "language": "cy", "name": "Rhian Morgan", "role": "carer"}
    built, _, _ = await family_text(make_notifier, PARENT, welsh_phone, CARER)
    texts = {m.to: m for m in built.sms.sent}
    assert len(texts) == 2
    codes = {to: SHORT.search(m.body).group(1) for to, m in texts.items()}  # type: ignore[union-attr]
    assert len(set(codes.values())) == 2
    languages = {to: (await resolve(built, c)).json()["language"] for to, c in codes.items()}
    assert sorted(languages.values()) == ["cy", "en"]
    [email] = built.email.sent
    assert f"{WEB}/f/" not in email.body and "/family/" in email.body
