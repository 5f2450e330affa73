"""Managers' subscriptions through the HTTP API (admin bearer token), the command line and the YAML
file, against PostgreSQL; addresses stored encrypted and never shown in full."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from typer.testing import CliRunner

from services.notifier.adapters import tables
from services.notifier.domain.subscriptions import SubscriptionSpec
from services.notifier.entrypoints.cli import subscriptions_app
from services.notifier.service_layer.subscriptions import SubscriptionsFileError, read_subscriptions_file
from shared.settings import Settings
from tests.notifier.helpers import deadline_event

pytestmark = pytest.mark.infra
TOKEN = "admin-token-for-tests-0123456789"
ADDRESS = "north.manager@council.example"


def api(built) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=built.notifier.api), base_url="http://notifier")


BODY = {"manager_ref": "mgr-north", "scope": "team", "scope_id": "team-n", "kind": "breach", "channel": "email",
        "address": ADDRESS}


async def test_the_api_needs_an_admin_token(make_notifier) -> None:
    built = await make_notifier(admin_tokens=[TOKEN, "another-token-0123456789"])
    async with api(built) as client:
        assert (await client.get("/v1/subscriptions")).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert (await client.post("/v1/subscriptions", json=BODY, headers=wrong)).status_code == 401
        assert (await client.get("/v1/subscriptions", headers={"Authorization": f"Basic {TOKEN}"})).status_code == 401
        ok = await client.get("/v1/subscriptions", headers={"Authorization": "Bearer another-token-0123456789"})
        assert ok.status_code == 200 and ok.json() == {"items": []}


async def test_no_admin_token_configured_means_no_access(make_notifier) -> None:
    built = await make_notifier()
    async with api(built) as client:
        assert (await client.get("/v1/subscriptions", headers={"Authorization": "Bearer "})).status_code == 401


async def test_add_list_remove_through_the_api(make_notifier) -> None:
    built = await make_notifier(admin_tokens=[TOKEN])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with api(built) as client:
        created = await client.post("/v1/subscriptions", json=BODY, headers=auth)
        assert created.status_code == 201
        sub = created.json()
        assert sub["address_hint"] == "n***@council.example" and ADDRESS not in created.text
        again = await client.post("/v1/subscriptions", json={**BODY, "address": "new.manager@council.example"},
                                  headers=auth)
        assert again.json()["subscription_id"] == sub["subscription_id"]  # the same subscription, updated
        listed = (await client.get("/v1/subscriptions", headers=auth)).json()["items"]
        assert [s["address_hint"] for s in listed] == ["n***@council.example"]
        bad = await client.post("/v1/subscriptions", headers=auth,
                                json={**BODY, "channel": "sms", "kind": "daily_digest", "address": "07700900555"})
        assert bad.status_code == 422 and "only breach alerts go by text" in bad.text and "900555" not in bad.text
        gone = await client.delete(f"/v1/subscriptions/{sub['subscription_id']}", headers=auth)
        assert gone.status_code == 204
        assert (await client.delete(f"/v1/subscriptions/{sub['subscription_id']}", headers=auth)).status_code == 404
    async with built.sessions() as session:
        assert (await session.execute(select(tables.subscriptions))).all() == []


async def test_a_breach_alert_goes_once_to_a_manager_with_overlapping_subscriptions(make_notifier) -> None:
    built = await make_notifier()
    subs = built.service.subscriptions
    for scope, scope_id in (("team", "team-n"), ("all", None)):
        await subs.add(SubscriptionSpec(manager_ref="mgr-n", scope=scope, scope_id=scope_id, kind="breach",
                                        address=ADDRESS))
    await subs.add(SubscriptionSpec(manager_ref="mgr-n", scope="all", kind="breach", channel="sms",
                                    address="07700 900444"))
    await subs.add(SubscriptionSpec(manager_ref="mgr-s", scope="team", scope_id="team-s", kind="breach",
                                    address="south@council.example"))
    await built.service.handle_deadline_events([deadline_event("deadline.breached", "case-9", due_on=date(2026, 3, 9))])
    while await built.service.send_due():
        pass
    [email] = built.email.to(ADDRESS)
    assert "team team-n" in email.subject and "case-9" in email.subject
    [text] = built.sms.sent
    assert text.to == "+447700900444" and "case-9" not in text.body  # a text carries no case reference
    assert built.email.to("south@council.example") == []


def test_the_subscriptions_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "subs.yaml"
    good.write_text("subscriptions:\n"
                    "  - {manager: mgr-a, scope: all, kind: weekly_summary, address: a@council.example}\n"
                    "  - {manager_ref: mgr-b, scope: area, scope_id: west, kind: breach, channel: sms,"
                    " address: '07700 900666'}\n")
    specs = read_subscriptions_file(good)
    assert [(s.manager_ref, s.kind, s.address) for s in specs] == [
        ("mgr-a", "weekly_summary", "a@council.example"), ("mgr-b", "breach", "+447700900666")]
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {manager: mgr-a, scope: team, kind: breach, address: '07700 900777', channel: sms}\n")
    with pytest.raises(SubscriptionsFileError, match="entry 1: .*needs scope_id") as info:
        read_subscriptions_file(bad)
    assert "900777" not in str(info.value)


def test_the_command_line_adds_lists_and_removes(isolated: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"EHC_DATABASE_URL": isolated.database_url, "EHC_DB_SCHEMA_PREFIX": isolated.db_schema_prefix,
           "EHC_NOTIFIER__ENCRYPTION_KEY": Fernet.generate_key().decode(), "EHC_ENVIRONMENT": "test"}
    added = runner.invoke(subscriptions_app, ["add", "--manager", "mgr-cli", "--kind", "daily_digest", "--scope",
                                              "team", "--scope-id", "team-n", "--address", ADDRESS], env=env)
    assert added.exit_code == 0, added.output
    assert "n***@council.example" in added.output and ADDRESS not in added.output
    file = tmp_path / "subs.yaml"
    file.write_text("- {manager: mgr-file, scope: all, kind: breach, address: file@council.example}\n")
    loaded = runner.invoke(subscriptions_app, ["load", str(file)], env=env)
    assert loaded.exit_code == 0 and "loaded 1" in loaded.output
    listed = runner.invoke(subscriptions_app, ["list", "--json"], env=env)
    items = [json.loads(line) for line in listed.output.splitlines()]
    assert {i["manager_ref"] for i in items} == {"mgr-cli", "mgr-file"}
    assert ADDRESS not in listed.output and "file@council.example" not in listed.output
    refused = runner.invoke(subscriptions_app, ["add", "--manager", "m", "--kind", "breach", "--scope", "team",
                                                "--address", ADDRESS], env=env)
    assert refused.exit_code == 2 and "needs scope_id" in refused.output
    first = items[0]["subscription_id"]
    assert runner.invoke(subscriptions_app, ["remove", first], env=env).exit_code == 0
    assert runner.invoke(subscriptions_app, ["remove", first], env=env).exit_code == 1
