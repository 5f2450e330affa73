"""The acceptance of the web front in a real browser (Playwright driving Debian's Chromium), with
JavaScript off for the journeys (every page must work without it) and axe-core (WCAG 2.2 AA) on
every page with it on. Staff sign in through a real OpenID Connect provider run by the test; the
whole pipeline is real: web -> intake webhook -> Kafka -> deadlines -> read API."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from shared import topics
from shared.family_duties import FAMILY_DUTIES
from shared.family_links import link_url
from tests.conftest import Mailbox, eventually
from tests.web.conftest import assigned, requested
from tests.web.oidc_provider import OidcProvider

pytestmark = pytest.mark.infra
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
TEAM_NAMES = {"team-1": "North Testshire team"}  # shown instead of the id on staff pages


@pytest.fixture(scope="session")
def oidc() -> Iterator[OidcProvider]:
    provider = OidcProvider()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        await b.close()


async def loopback_only(context: Any) -> Any:
    """Nothing leaves the machine (the provider's login page links web fonts from outside)."""
    async def route(r: Any) -> None:
        host = urlsplit(r.request.url).hostname
        await (r.continue_() if host in ("127.0.0.1", "localhost") else r.abort())

    await context.route("**/*", route)
    return context


async def new_context(browser: Any, javascript: bool = True, state: Any = None) -> Any:
    return await loopback_only(await browser.new_context(java_script_enabled=javascript, storage_state=state))


async def accessible(browser: Any, context: Any, pages: dict[str, str]) -> None:
    """axe-core finds no WCAG 2.2 AA violation on these pages (JavaScript on, same session). With
    EHC_SCREENSHOTS set to a folder (``make screenshots``), each page is also saved there as a PNG:
    the README's pictures come from the tests' data."""
    from axe_playwright_python.async_playwright import Axe

    shots = os.environ.get("EHC_SCREENSHOTS")
    if shots:
        os.makedirs(shots, exist_ok=True)
    checked = await new_context(browser, True, await context.storage_state())
    page = await checked.new_page()
    await page.set_viewport_size({"width": 960, "height": 720})
    for name, url in pages.items():
        await page.goto(url)
        results = await Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}})
        assert results.violations_count == 0, f"{url}: {results.generate_report()}"
        if shots:
            await page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=True)
    await checked.close()


def oidc_settings(oidc: OidcProvider) -> dict[str, Any]:
    return {"oidc_metadata_url": oidc.metadata_url, "oidc_client_id": "ehc-web",
            "oidc_client_secret": SecretStr("not-checked-by-the-mock")}


async def sign_in(page: Any, stack: Any, path: str, user: str, roles: list[str]) -> None:
    await page.goto(stack.url + path)
    assert page.url.startswith("http://127.0.0.1") and "/default/authorize" in page.url  # the provider's page
    await page.fill("input[name=username]", user)
    await page.fill("textarea[name=claims]", json.dumps({"roles": roles, "name": f"{user} (test)"}))
    await page.click("input[type=submit]")
    await page.wait_for_url(stack.url + path)


async def status_of(page: Any, rule_id: str) -> str:
    return str(await page.locator(f'[data-testid=deadline][data-rule="{rule_id}"] [data-testid=status]').inner_text())


async def test_caseworker_signs_in_sees_own_cases_and_records_an_exception(make_stack, oidc, browser) -> None:
    stack = await make_stack(team_names=TEAM_NAMES, **oidc_settings(oidc))
    received = date.today() - timedelta(days=10)
    await stack.send(assigned("case-a1", "cw-a", "team-1", received), requested("case-a1", received),
                     assigned("case-b1", "cw-b", "team-2", received), requested("case-b1", received))
    await stack.wait_deadlines("case-a1", 3)
    await stack.wait_deadlines("case-b1", 3)

    context = await new_context(browser, javascript=False)
    page = await context.new_page()
    await sign_in(page, stack, "/cases", "cw-a", ["caseworker"])
    cases = page.get_by_test_id("cases")
    assert "case-a1" in await cases.inner_text() and "case-b1" not in await page.content()

    await page.click("text=case-a1")
    assert await status_of(page, "assessment.decision") == "Open"
    await page.check("#exception-E3")
    await page.check('input[name=rule_ids][value="assessment.decision"]')
    await page.fill("#reason", "The family was abroad for three weeks")
    await page.click("text=Record exception")
    assert "Exception recorded" in await page.content()

    async def changed() -> bool:
        await page.goto(f"{stack.url}/cases/case-a1")
        return await status_of(page, "assessment.decision") == "Exception"

    await eventually(changed, 60, "the deadline's status to change to Exception")
    assert "The family was abroad" in await page.content()

    refused = await page.goto(f"{stack.url}/cases/case-b1")
    assert refused is not None and refused.status == 403
    assert "case-b1" not in await page.locator("main").inner_text()
    await accessible(browser, context, {"my-cases": f"{stack.url}/cases", "case": f"{stack.url}/cases/case-a1",
                                        "calendar": f"{stack.url}/calendar"})
    await context.close()


async def test_family_sees_timeline_and_message_reaches_caseworker(make_stack, browser, smtp_server: Mailbox,
                                                                  tmp_path: Path) -> None:
    texts = tmp_path / "texts"  # the notifier's file channel: what the family's phone would get
    stack = await make_stack(notifier={"file_sink_dir": texts, "quiet_hours_start": "00:00",
                                       "quiet_hours_end": "00:00"})  # a text at any hour the test runs
    received = date.today() - timedelta(days=10)
    await stack.send(assigned("case-f1", "cw-a", "team-1", received), requested("case-f1", received))
    await stack.wait_deadlines("case-f1", 3)
    link = link_url(stack.url, stack.settings.web.family_link_secret.get_secret_value(), "case-f1")

    context = await new_context(browser, javascript=False)
    page = await context.new_page()
    await page.goto(link)
    decide = FAMILY_DUTIES["assessment.decision"]["en"]
    assert decide in await page.get_by_test_id("next").inner_text()
    assert "The council received the request" in await page.get_by_test_id("happened").inner_text()
    await page.check("#topic-date_wrong")
    await page.fill("#message", "The request date should be a day earlier")
    await page.click("text=Send to the council")
    assert "Your message has been sent" in await page.content()

    async def reached() -> bool:
        return any("has written" in m["Subject"] for m in smtp_server.to("cw-a@council.example"))

    await eventually(reached, 30, "the caseworker's email")
    await page.goto(link + "?lang=cy")
    assert "Beth sy'n digwydd nesaf" in await page.locator("main").inner_text()

    tampered = await page.goto(link[:-2] + ("xx" if not link.endswith("xx") else "yy"))
    assert tampered is not None and tampered.status == 403
    assert decide not in await page.content()
    await accessible(browser, context, {"family": link, "family-welsh": link + "?lang=cy"})
    await context.close()

    # issue 10: a text to the family (a new request today) ends with its short link, which opens the timeline
    await stack.producer.send_and_wait(stack.settings.kafka.topic(topics.CONTACTS), json.dumps({
        "specversion": "1.0", "id": "contacts-f2", "source": "cms/test", "type": "ehc.contacts.updated",
        "subject": "case-f2", "time": f"{date.today().isoformat()}T09:00:00Z", "datacontenttype": "application/json",
        "data": {"contacts": [{"phone": "07700 900123", "channel": "sms", "consent": True}]}}).encode(),
        key=b"case-f2")
    await stack.send(assigned("case-f2", "cw-a", "team-1", date.today()), requested("case-f2", date.today()))

    def texts_sent() -> list[str]:
        return [json.loads(f.read_text())["body"] for f in texts.glob("*.json")] if texts.is_dir() else []

    async def texted() -> bool:
        return bool(texts_sent())

    await eventually(texted, 60, "the family's text")
    [text] = texts_sent()
    found = re.search(re.escape(stack.url) + r"/f/[A-Za-z0-9]{12}$", text)
    assert found, text
    short = found.group(0)
    context = await new_context(browser, javascript=False)
    page = await context.new_page()
    opened = await page.goto(short)
    assert opened is not None and opened.status == 200
    assert decide in await page.get_by_test_id("next").inner_text()
    tampered_short = short[:-1] + ("A" if not short.endswith("A") else "B")
    refused = await page.goto(tampered_short)
    assert refused is not None and refused.status == 403
    assert decide not in await page.content()
    await accessible(browser, context, {"family-short-link": short, "family-link-refused": tampered_short})
    await context.close()


async def test_manager_dashboard_matches_the_report_and_drills_down(make_stack, oidc, browser) -> None:
    from shared.timeliness import timeliness_of

    stack = await make_stack(team_names=TEAM_NAMES, **oidc_settings(oidc))
    year = date.today().year
    plans = {  # case -> (received, issued, exception on plan.final)
        "case-p1": (date(year, 3, 2), date(year, 6, 1), False),  # 91 days: within 20 weeks
        "case-p2": (date(year, 1, 5), date(year, 7, 6), False),  # 182 days
        "case-p3": (date(year, 2, 2), date(year, 8, 3), True),  # 182 days, under an exception
    }
    for case_id, (received, issued, exception) in plans.items():
        events = [assigned(case_id, "cw-a", "team-1", received), requested(case_id, received)]
        if exception:
            events.append((f"{case_id}-e3", case_id, "ehc.exception.recorded", received + timedelta(days=28),
                           {"exception": "E3", "rule_ids": ["plan.final"], "reason": "family abroad"}))
        events.append((f"{case_id}-plan", case_id, "ehc.plan.issued", issued, {"plan_id": f"plan-{case_id}"}))
        await stack.send(*events)
    late = date.today() - timedelta(days=60)  # its 6-week decision is missed
    await stack.send(assigned("case-late", "cw-b", "team-1", late), requested("case-late", late),
                     assigned("case-other", "cw-c", "team-2", late), requested("case-other", late))
    for case_id in [*plans, "case-late", "case-other"]:
        await stack.wait_deadlines(case_id, 3)

    async def breached() -> bool:
        return any(d["status"] == "breached" for d in await stack.web.deps.deadlines.case_deadlines("case-late"))

    await eventually(breached, 30, "the missed decision marked breached by the deadlines service")
    report = timeliness_of(plans.values(), year)  # the function `ehc report timeliness` counts with
    assert (report.including_exceptions.percent_within_20_weeks, report.excluding_exceptions.percent_within_20_weeks
            ) == (33.3, 50.0)

    context = await new_context(browser, javascript=False)
    page = await context.new_page()
    await sign_in(page, stack, "/dashboard", "mgr-1", ["manager:team-1"])
    assert (await page.get_by_test_id("percent-with").inner_text()).strip() == "33.3%"
    assert (await page.get_by_test_id("percent-without").inner_text()).strip() == "50.0%"
    assert "46.1%" in await page.get_by_test_id("timeliness").inner_text()
    by_caseworker = await page.get_by_test_id("by-caseworker").inner_text()
    assert "cw-b" in by_caseworker and "cw-c" not in by_caseworker  # team-2 is not theirs
    assert "North Testshire team" in by_caseworker and "team-1" not in by_caseworker  # its name, not its id
    missed = await stack.web.deps.deadlines.deadlines(status=["breached"], team_id="team-1")
    assert (await page.get_by_test_id("total-breached").inner_text()).strip() == str(len(missed))

    await page.get_by_test_id("total-breached").get_by_role("link").click()
    listed = await page.get_by_test_id("cases").inner_text()
    assert "case-late" in listed and "case-other" not in listed
    await page.click("text=case-late")
    assert await status_of(page, "assessment.decision") == "Missed"
    refused = await page.goto(f"{stack.url}/dashboard?team_id=team-2")
    assert refused is not None and refused.status == 403
    await accessible(browser, context, {"dashboard": f"{stack.url}/dashboard",
                                        "dashboard-missed": f"{stack.url}/dashboard/cases?only=overdue",
                                        "breach-alerts": f"{stack.url}/dashboard/subscriptions"})
    await context.close()
