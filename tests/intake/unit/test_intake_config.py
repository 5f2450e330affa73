"""Intake's settings: the case id key (required in production), mappings from the shipped examples and
``mappings_dir``, and source topics and webhook sources wired to their mappings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.intake.bootstrap import bootstrap, configured_sources
from services.intake.config import DEV_CASE_ID_KEY, ConfigError, available_mappings, case_id_key
from shared.contracts import ContactsUpdated
from shared.settings import IntakeSettings, Settings

KEY = "config-case-id-key-0123456789abcdef"
CASEFLOW_MESSAGE = {"msg_id": "CF-1", "case_ref": "CF/1", "status": "REQ_RCVD", "status_date": "05/01/2026",
                    "recorded_at": "05/01/2026 09:00", "parent_email": "p@example.org", "contact_consent": "Y"}


def settings(environment: str = "test", **intake: object) -> Settings:
    return Settings(environment=environment, database_url="sqlite+aiosqlite:///:memory:",
                    intake=IntakeSettings(**intake))  # type: ignore[arg-type]


def test_the_case_id_key_is_required_in_production():
    with pytest.raises(ConfigError, match="EHC_INTAKE__CASE_ID_KEY is required in production"):
        case_id_key(settings("production"))
    assert case_id_key(settings("production", case_id_key=SecretStr(KEY))) == KEY.encode()


def test_intake_does_not_start_in_production_without_a_key():
    with pytest.raises(ConfigError, match="required in production"):
        configured_sources(settings("production"))
    assert configured_sources(settings("production", case_id_key=SecretStr(KEY))) == ({}, {})


def test_a_short_key_is_refused_without_showing_it():
    with pytest.raises(ConfigError) as refused:
        case_id_key(settings(case_id_key=SecretStr("short-secret")))
    assert "shorter than 16" in str(refused.value) and "short-secret" not in str(refused.value)


def test_outside_production_a_fixed_dev_key_is_used_with_a_warning():
    warnings: list[str] = []
    assert case_id_key(settings("local"), warn=warnings.append) == DEV_CASE_ID_KEY
    assert len(warnings) == 1 and "EHC_INTAKE__CASE_ID_KEY" in warnings[0]


def test_mappings_come_from_the_examples_and_mappings_dir(tmp_path: Path):
    assert {"canonical", "caseflow", "synergy-like"} <= set(available_mappings(settings()))
    (tmp_path / "ours.yaml").write_text(
        "name: ours\nsource: cms/ours\nmode: canonical\naccept_sources: [cms/ours]\n")
    (tmp_path / "caseflow.yaml").write_text("name: caseflow\nsource: cms/caseflow/herts\nmode: canonical\n")
    found = available_mappings(settings(mappings_dir=tmp_path))
    assert found["ours"].accept_sources == ["cms/ours"]
    assert found["caseflow"].source == "cms/caseflow/herts"  # the folder's mapping replaces the example
    assert found["synergy-like"].source == "cms/synergy-like/example"
    with pytest.raises(ConfigError, match="not a folder"):
        available_mappings(settings(mappings_dir=tmp_path / "missing"))


def test_source_topics_and_webhook_sources_get_their_mapping():
    topics, webhooks = configured_sources(settings(
        case_id_key=SecretStr(KEY), source_topics={"caseflow": "cf.status", "canonical": "cms.canonical"},
        webhook_secrets={"cms-a": SecretStr("s")}, webhook_mappings={"cms-a": "caseflow"}))
    assert {name: topic for name, (topic, _) in topics.items()} == {"caseflow": "cf.status",
                                                                   "canonical": "cms.canonical"}
    from services.intake.service_layer.handlers import RawInput

    message = RawInput(value=json.dumps(CASEFLOW_MESSAGE).encode(), channel="webhook", input_source="cms-a")
    event, contacts = webhooks["cms-a"](message)
    assert event.source == "cms/caseflow/example" and isinstance(contacts, ContactsUpdated)
    assert configured_sources(settings()) == ({}, {})  # nothing configured: no key needed, no warning


@pytest.mark.parametrize(("intake", "message"), [
    ({"source_topics": {"nope": "t"}}, "no mapping named 'nope'"),
    ({"webhook_mappings": {"cms-a": "caseflow"}}, "webhook source 'cms-a' has no secret"),
    ({"webhook_secrets": {"cms-a": SecretStr("s")}, "webhook_mappings": {"cms-a": "nope"}},
     "no mapping named 'nope'"),
    ({"source_topics": {"caseflow": " "}}, "empty topic name"),
    ({"webhook_sources": {"cms-a": ["cms/a"]}}, "EHC_INTAKE__WEBHOOK_SOURCES: webhook source 'cms-a' has no secret"),
    ({"webhook_secrets": {"cms-a": SecretStr("s")}, "webhook_sources": {"cms-a": [" "]}},
     "EHC_INTAKE__WEBHOOK_SOURCES: webhook source 'cms-a' has an empty source"),
])
def test_misconfigured_sources_fail_at_start_up(intake, message):
    with pytest.raises(ConfigError, match=message):
        configured_sources(settings(case_id_key=SecretStr(KEY), **intake))


async def test_bootstrap_subscribes_to_each_configured_source_topic():
    intake = bootstrap(settings(case_id_key=SecretStr(KEY), source_topics={"caseflow": "cf.status"}))
    subscribed = {topic for sub in intake.broker.subscribers for topic in sub.topic_names}
    assert subscribed == {"ehc.intake.canonical", "cf.status"}
    assert set(intake.sources) == {"caseflow"}
