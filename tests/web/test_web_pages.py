"""The web front's pages over HTTP (no browser): a caseworker's cases and case page, recording an
exception through intake's webhook (the full pipeline: web -> intake -> Kafka -> deadlines -> read
API), another caseworker's case refused, CSRF, the development sign-in refused in production."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from shared.family_duties import FAMILY_DUTIES
from shared.settings import Settings
from tests.conftest import eventually
from tests.web.conftest import assigned, requested

pytestmark = pytest.mark.infra


async def dev_sign_in(client: httpx.AsyncClient, who: str, roles: str) -> None:
    form = await client.get("/dev-sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    r = await client.post("/dev-sign-in", data={"csrf_token": token, "who": who, "roles": roles})
    assert r.status_code == 303, r.text


def made_days_ago(secret: str, case_id: str, days: int) -> str:
    """A family link as the notifier would have made it ``days`` ago."""
    import time

    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from shared.family_links import SALT

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - days * 86400

    return URLSafeTimedSerializer(secret, salt=SALT, signer=Then).dumps({"c": case_id, "l": "en"})


async def requested_cases(stack: Any, received: date, *cases: tuple[str, str, str]) -> None:
    """Cases (id, caseworker, team) assigned and requested on ``received``, their deadlines stored."""
    await stack.send(*(event for case_id, caseworker, team in cases
                       for event in (assigned(case_id, caseworker, team, received), requested(case_id, received))))
    for case_id, _, _ in cases:
        await stack.wait_deadlines(case_id, 3)


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


async def test_caseworker_sees_own_cases_and_records_an_exception(make_stack) -> None:
    stack = await make_stack(dev_sign_in=True)
    await requested_cases(stack, date.today() - timedelta(days=20), ("case-a1", "cw-a", "team-1"),
                          ("case-b1", "cw-b", "team-2"))
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

        exception_id = re.search(r'name="exception_event_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        withdrawn = await client.post("/cases/case-a1/exceptions/withdraw", data={
            "csrf_token": csrf(page.text), "exception_event_id": exception_id})
        assert withdrawn.status_code == 303

        async def reopened() -> bool:
            deadlines = await stack.web.deps.deadlines.case_deadlines("case-a1")
            return any(d["rule_id"] == "assessment.decision" and d["status"] in ("open", "due_soon")
                       for d in deadlines)

        await eventually(reopened, 60, "the deadline open again once the exception is withdrawn")
        assert "ehc.exception.withdrawn" in (await client.get("/cases/case-a1")).text


async def test_teams_shown_by_their_names(make_stack) -> None:
    """The dashboard, its drill-down lists and the case page name a team as staff know it (EHC_TEAM_NAMES,
    shared with the notifier); a team without a name keeps its id."""
    stack = await make_stack(dev_sign_in=True, team_names={"team-1": "North SEN team"})
    await requested_cases(stack, date.today() - timedelta(days=20), ("case-a1", "cw-a", "team-1"),
                          ("case-b1", "cw-b", "team-2"))
    async with httpx.AsyncClient(base_url=stack.url) as client:
        await dev_sign_in(client, "m-1", "manager")
        council = (await client.get("/dashboard")).text
        shown = re.sub(r"<[^>]*>", " ", council)  # the words on the page, not its links and form values
        assert "North SEN team" in shown and "team-1" not in shown
        assert "Team team-2" in shown  # no name set: the id
        team = (await client.get("/dashboard", params={"team_id": "team-1"})).text
        assert '<span class="govuk-caption-l">North SEN team</span>' in team
        drill = (await client.get("/dashboard/cases", params={"team_id": "team-1"})).text
        assert "Cases (North SEN team)" in drill and ">North SEN team<" in drill
        case = (await client.get("/cases/case-a1")).text
        assert "North SEN team, caseworker cw-a" in case


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


async def test_family_link_timeline_and_message_to_the_caseworker(make_stack, smtp_server) -> None:
    from shared.family_links import link_url

    stack = await make_stack(dev_sign_in=True)
    received = date.today() - timedelta(days=50)  # the 6-week decision is already late
    await stack.send(assigned("case-f1", "cw-a", "team-1", received), requested("case-f1", received))
    await stack.wait_deadlines("case-f1", 3)
    secret = stack.settings.web.family_link_secret.get_secret_value()
    link = link_url(stack.url, secret, "case-f1")
    async with httpx.AsyncClient() as client:
        page = await client.get(link)
        assert page.status_code == 200, page.text
        assert FAMILY_DUTIES["assessment.decision"]["en"] in page.text
        assert "This is late" in page.text and "Testshire SENDIASS" in page.text
        assert "cw-a" not in page.text and "case-f1" not in page.text  # nothing but the timeline
        welsh = await client.get(link + "?lang=cy")
        assert 'lang="cy"' in welsh.text and "digwydd nesaf" in welsh.text

        sent = await client.post(link + "/message", data={"csrf_token": csrf(page.text), "topic": "not_received",
                                                          "message": "We never got the draft plan"})
        assert sent.status_code == 303

        def family_mails() -> list[Any]:
            return [m for m in smtp_server.to("cw-a@council.example") if "has written" in m["Subject"]]

        async def emailed() -> bool:
            return bool(family_mails())

        await eventually(emailed, 30, "the caseworker's email about the family's message")
        [mail] = family_mails()
        assert "case-f1" in mail["Subject"] and "We never got" not in mail.as_string()

        async def recorded() -> bool:
            history = await stack.web.deps.deadlines.case_history("case-f1")
            return any(e["type"] == "ehc.family.message" and e["data"]["topic"] == "not_received"
                       for e in history["items"])

        await eventually(recorded, 30, "the ehc.family.message event in the case's history")

        tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        assert (await client.get(tampered)).status_code == 403
        expired = made_days_ago(secret, "case-f1", 91)  # links last 90 days
        assert (await client.get(f"{stack.url}/family/{expired}")).status_code == 403
        old = made_days_ago(secret, "case-f1", 1)
        assert (await client.get(f"{stack.url}/family/{old}")).status_code == 200

    async with httpx.AsyncClient(base_url=stack.url) as staff:
        await dev_sign_in(staff, "cw-a", "caseworker")
        case = await staff.get("/cases/case-f1")
        assert "We never got the draft plan" in case.text
        r = await staff.post("/cases/case-f1/family-link/revoke", data={"csrf_token": csrf(case.text)})
        assert r.status_code == 303
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{stack.url}/family/{old}")).status_code == 403


async def short_link(stack: Any, case_id: str, days_ago: float = 0, language: str = "en") -> str:
    """A text's short link as the notifier makes it when it sends a text (``days_ago`` back)."""
    from datetime import UTC, datetime

    links = stack.notifier.service.sender.short_links
    async with stack.notifier.sessions() as session, session.begin():
        return str(await links.mint(session, case_id, language, None,
                                    datetime.now(UTC) - timedelta(days=days_ago)))


async def test_a_texts_short_link_opens_the_timeline_like_the_signed_link(make_stack, smtp_server) -> None:
    """Issue 10: ``<web base url>/f/<code>`` (the notifier's code, resolved through its API) opens the
    same timeline; a tampered, unknown, expired or revoked code gets the signed link's refusal page."""
    stack = await make_stack(dev_sign_in=True)
    received = date.today() - timedelta(days=50)
    await stack.send(assigned("case-s1", "cw-a", "team-1", received), requested("case-s1", received))
    await stack.wait_deadlines("case-s1", 3)
    link = await short_link(stack, "case-s1")
    assert re.fullmatch(re.escape(stack.url) + r"/f/[A-Za-z0-9]{12}", link)
    welsh_link = await short_link(stack, "case-s1", language="cy")
    async with httpx.AsyncClient() as client:
        page = await client.get(link)
        assert page.status_code == 200, page.text
        assert FAMILY_DUTIES["assessment.decision"]["en"] in page.text and "This is late" in page.text
        assert "cw-a" not in page.text and "case-s1" not in page.text
        assert "digwydd nesaf" in (await client.get(welsh_link)).text  # the family's language, from the code
        assert "digwydd nesaf" in (await client.get(link + "?lang=cy")).text
        sent = await client.post(link + "/message", data={"csrf_token": csrf(page.text), "topic": "question",
                                                          "message": "When is the next meeting?"})
        assert sent.status_code == 303 and sent.headers["location"].startswith(link.removeprefix(stack.url) + "?")

        async def recorded() -> bool:
            history = await stack.web.deps.deadlines.case_history("case-s1")
            return any(e["type"] == "ehc.family.message" and e["data"]["topic"] == "question"
                       for e in history["items"])

        await eventually(recorded, 30, "the family's message in the case's history")

        refused_signed = await client.get(f"{stack.url}/family/not-a-token")
        assert refused_signed.status_code == 403
        code = link.rsplit("/", 1)[1]
        tampered = link[:-1] + ("A" if code[-1] != "A" else "B")
        expired = await short_link(stack, "case-s1", days_ago=90.01)  # links last 90 days
        for bad in (tampered, f"{stack.url}/f/{'Z' * 12}", f"{stack.url}/f/short", expired):
            refused = await client.get(bad)
            assert refused.status_code == 403, bad
            assert refused.text == refused_signed.text  # one refusal, whatever was wrong
            post = await client.post(bad + "/message", data={"csrf_token": csrf(page.text), "topic": "question",
                                                             "message": "x"})
            assert post.status_code == 403
        assert (await client.get(await short_link(stack, "case-s1", days_ago=89))).status_code == 200

    async with httpx.AsyncClient(base_url=stack.url) as staff:
        await dev_sign_in(staff, "cw-a", "caseworker")
        case = await staff.get("/cases/case-s1")
        assert "every text a short link to it" in case.text and "after 90 days" in case.text
        r = await staff.post("/cases/case-s1/family-link/revoke", data={"csrf_token": csrf(case.text)})
        assert r.status_code == 303
    async with httpx.AsyncClient() as client:
        revoked = await client.get(link)
        assert revoked.status_code == 403 and revoked.text == refused_signed.text
        assert (await client.get(await short_link(stack, "case-s1"))).status_code == 200  # a new text works
    # the notifier itself no longer answers for the revoked code (not only the web front's own record)
    assert await stack.web.deps.notifier.resolve_short_link(code) is None


async def test_calendar_feed_and_breach_alerts(make_stack) -> None:
    from icalendar import Calendar

    stack = await make_stack(dev_sign_in=True)
    await requested_cases(stack, date.today() - timedelta(days=3), ("case-c1", "cw-a", "team-1"),
                          ("case-c2", "cw-b", "team-1"))
    async with httpx.AsyncClient(base_url=stack.url) as client:
        await dev_sign_in(client, "cw-a", "caseworker manager:team-1")
        page = await client.get("/calendar")
        made = await client.post("/calendar/renew", data={"csrf_token": csrf(page.text)}, follow_redirects=True)
        found = re.search(r"data-testid=.feed-url.>([^<]+)<", made.text)
        assert found, made.text[-3000:]
        feed = found.group(1)
        ics = await client.get(feed)
        assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
        events = Calendar.from_ical(ics.content).walk("VEVENT")
        assert {str(e["summary"]).split("(case ")[1].rstrip(")") for e in events} == {"case-c1"}
        decision = next(e for e in events if "Decide whether" in str(e["summary"]))
        api = await stack.web.deps.deadlines.case_deadlines("case-c1")
        due = next(d["due_on"] for d in api if d["rule_id"] == "assessment.decision")
        assert decision.decoded("dtstart") == date.fromisoformat(due)
        again = await client.post("/calendar/renew", data={"csrf_token": csrf(page.text)})
        assert again.status_code == 303
        assert (await client.get(feed)).status_code == 404  # the old address stopped working

        alerts = await client.get("/dashboard/subscriptions")
        added = await client.post("/dashboard/subscriptions", data={
            "csrf_token": csrf(alerts.text), "scope": "team:team-1", "kind": "breach", "channel": "email",
            "address": "manager.one@council.example"}, follow_redirects=True)
        assert "m***@council.example" in added.text and "manager.one@" not in added.text
        [sub] = await stack.web.deps.notifier.subscriptions()
        assert (sub["scope"], sub["scope_id"], sub["manager_ref"]) == ("team", "team-1", "cw-a")
        bad = await client.post("/dashboard/subscriptions", data={
            "csrf_token": csrf(alerts.text), "scope": "team:team-2", "kind": "breach", "address": "x@council.example"})
        assert bad.status_code == 403  # not their team
        gone = await client.post(f"/dashboard/subscriptions/{sub['subscription_id']}/delete",
                                 data={"csrf_token": csrf(alerts.text)})
        assert gone.status_code == 303 and await stack.web.deps.notifier.subscriptions() == []


async def test_the_notifier_makes_family_links_the_web_front_opens(isolated: Settings) -> None:
    from services.notifier.bootstrap import bootstrap as notifier_bootstrap
    from shared.family_links import read_token

    settings = isolated.model_copy(update={"web": isolated.web.model_copy(update={
        "base_url": "https://ehc.council.example", "family_link_secret": SecretStr("s" * 40)})})
    notifier = notifier_bootstrap(settings)
    service = notifier.service
    await notifier.engine.dispose()
    assert service.timeline_link is not None
    url = service.timeline_link("case-42")
    assert url.startswith("https://ehc.council.example/family/")
    assert read_token("s" * 40, url.rsplit("/", 1)[1], 3600).case_id == "case-42"
