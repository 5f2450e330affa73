"""The web front's pages over HTTP (no browser): a caseworker's cases and case page, recording an
exception through intake's webhook (the full pipeline: web -> intake -> Kafka -> deadlines -> read
API), another caseworker's case refused, CSRF, the development sign-in refused in production."""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import pytest
from pydantic import SecretStr

from shared.settings import Settings
from tests.conftest import eventually
from tests.web.conftest import assigned, requested

pytestmark = pytest.mark.infra


async def dev_sign_in(client: httpx.AsyncClient, who: str, roles: str) -> None:
    form = await client.get("/dev-sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    r = await client.post("/dev-sign-in", data={"csrf_token": token, "who": who, "roles": roles})
    assert r.status_code == 303, r.text


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


async def test_caseworker_sees_own_cases_and_records_an_exception(make_stack) -> None:
    stack = await make_stack(dev_sign_in=True)
    received = date.today() - timedelta(days=20)
    await stack.send(assigned("case-a1", "cw-a", "team-1", received), requested("case-a1", received),
                     assigned("case-b1", "cw-b", "team-2", received), requested("case-b1", received))
    await stack.wait_deadlines("case-a1", 3)
    await stack.wait_deadlines("case-b1", 3)
    async with httpx.AsyncClient(base_url=stack.url) as client:
        assert (await client.get("/cases")).status_code == 303  # sign in first
        await dev_sign_in(client, "cw-a", "caseworker")
        mine = await client.get("/cases")
        assert mine.status_code == 200
        assert "case-a1" in mine.text and "case-b1" not in mine.text
        assert (await client.get("/cases/case-b1")).status_code == 403

        page = await client.get("/cases/case-a1")
        assert page.status_code == 200
        for words in ("Decide whether to carry out an EHC needs assessment", "Regs 5(1)", "case-a1-request",
                      "The council", "Testshire Council"):
            assert words in page.text

        refused = await client.post("/cases/case-a1/exceptions", data={"csrf_token": "forged", "exception": "E3",
                                                                       "rule_ids": "assessment.decision"})
        assert refused.status_code == 403
        done = await client.post("/cases/case-a1/exceptions", data={
            "csrf_token": csrf(page.text), "exception": "E3", "rule_ids": "assessment.decision",
            "reason": "family abroad"})
        assert done.status_code == 303

        async def excepted() -> bool:
            deadlines = await stack.web.deps.deadlines.case_deadlines("case-a1")
            return any(d["rule_id"] == "assessment.decision" and d["status"] == "exception" for d in deadlines)

        await eventually(excepted, 60, "the exception recomputed by the deadlines service")
        page = await client.get("/cases/case-a1")
        assert "Exception" in page.text and "family abroad" in page.text and "ehc.exception.recorded" in page.text


async def test_dev_sign_in_refused_in_production(isolated: Settings) -> None:
    from services.web.bootstrap import bootstrap

    settings = isolated.model_copy(update={"environment": "production", "web": isolated.web.model_copy(update={
        "dev_sign_in": True, "session_secret": SecretStr("x" * 40), "family_link_secret": SecretStr("y" * 40),
        "intake_secret": SecretStr("z" * 40)})})
    web = bootstrap(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web.api), base_url="http://w") as client:
        assert (await client.get("/dev-sign-in")).status_code == 404
        assert (await client.post("/dev-sign-in", data={"who": "x", "roles": "admin"})).status_code == 404
    await web.stop()
