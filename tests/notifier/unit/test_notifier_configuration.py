"""Issue 9: configuration that cannot fail at send time. A template variable that comes from a setting
with no value (the SENDIASS contact, the council's phone, ...) stops a production notifier at
start-up and is logged loudly elsewhere; a value too long for one SMS is said at start-up too."""

from __future__ import annotations

import pytest

from services.notifier.bootstrap import ConfigurationError, check_template_settings, template_setting_problems
from shared.settings import NotifierSettings

GOOD = {"council_name": "Hertfordshire County Council", "council_phone": "0300 123 4043",
        "sendiass_contact": "Herts SENDIASS 01992 555847", "family_link_base": "https://herts.gov.uk/ehc"}


def test_a_complete_configuration_has_no_problem() -> None:
    assert template_setting_problems(NotifierSettings(**GOOD)) == ([], [])


def test_a_missing_sendiass_contact_is_named_with_the_messages_it_would_break() -> None:
    errors, _ = template_setting_problems(NotifierSettings(**{**GOOD, "sendiass_contact": ""}))
    assert len(errors) == 1
    assert "EHC_NOTIFIER__SENDIASS_CONTACT" in errors[0] and "family_deadline_missed" in errors[0]


def test_production_refuses_to_start_and_local_warns() -> None:
    cfg = NotifierSettings(**{**GOOD, "sendiass_contact": "", "council_phone": ""})
    with pytest.raises(ConfigurationError, match="EHC_NOTIFIER__COUNCIL_PHONE"):
        check_template_settings(cfg, "production")
    said: list[str] = []
    check_template_settings(cfg, "local", said.append)
    assert any("EHC_NOTIFIER__SENDIASS_CONTACT" in s for s in said)
    assert any("EHC_NOTIFIER__COUNCIL_PHONE" in s for s in said)


def test_a_link_too_long_for_one_text_is_a_warning() -> None:
    errors, warnings = template_setting_problems(NotifierSettings(**{**GOOD, "family_link_base": ""}))
    assert errors == []  # the info_url is used: texts still go, in two fragments
    assert any("EHC_NOTIFIER__FAMILY_LINK_BASE" in w for w in warnings)


def test_texts_with_short_links_are_measured_at_the_short_link_and_a_long_web_address_is_a_warning() -> None:
    cfg = NotifierSettings(**{**GOOD, "family_link_base": ""})  # not used when texts carry short links
    assert template_setting_problems(cfg, short_link_base="https://ehc.herts.gov.uk") == ([], [])
    errors, warnings = template_setting_problems(cfg, short_link_base="https://send-deadlines.hertfordshire.gov.uk")
    assert errors == [] and any("EHC_NOTIFIER__SHORT_LINK_BASE" in w for w in warnings)
