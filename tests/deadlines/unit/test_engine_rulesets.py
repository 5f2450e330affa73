"""Rule sets as versioned data: every rule of the law file, loading, versions in force."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from engine_testkit import CALENDAR, d, event

from services.deadlines.domain import (
    RuleSetError,
    RuleSetHistory,
    RuleSetRegistry,
    compute,
    load_ruleset,
    load_ruleset_history,
)
from services.deadlines.domain.rules import RULESETS_DIR, parse_ruleset
from tests.paths import LAW_FILE

LAW_FILE = LAW_FILE

# Every rule_id of sections A1-A5 of the law file, with its flags there.
LAW_RULES = {
    "assessment.decision": (), "assessment.advice": (), "assessment.plan_decision": (), "plan.final": (),
    "draft.representations": (), "draft.consultation_response": ("guidance",),
    "review.annual": (), "review.meeting_notice": (), "review.advice_circulation": (), "review.report": (),
    "review.decision": (), "amendment.representations": (), "amendment.final": (), "phase_transfer.review": (),
    "review.under5": ("guidance",),
    "reassessment.decision": ("unconfirmed",), "reassessment.final": (), "transfer.send_plan": (),
    "transfer.notify_family": (), "transfer.review": (), "cease.appeal_window": (),
    "mediation.adviser_contact": (), "mediation.certificate_declined": ("unconfirmed",),
    "mediation.health_notice": ("unconfirmed",), "mediation.arrange": ("unconfirmed",),
    "mediation.certificate": ("unconfirmed",), "mediation.agreement": (), "appeal.deadline": (),
    "appeal.la_response": ("unconfirmed",),
    "tribunal.assess_notify": (), "tribunal.assess_no_plan": (), "tribunal.assess_final": (),
    "tribunal.plan_draft": (), "tribunal.plan_final": (), "tribunal.amend": (), "tribunal.school_name": (),
    # england.md#L86: the paragraph of Regs 44 for tribunal.continue is unconfirmed.
    "tribunal.continue": ("unconfirmed",), "tribunal.recommendation_response": (),
    "unopposed.assess_notify": (), "unopposed.assess_no_plan": (), "unopposed.assess_final": (),
    "unopposed.amend": (),
    # england.md#L90-L92: three more limits of Regs 45, unconfirmed.
    "unopposed.plan_draft": ("unconfirmed",), "unopposed.plan_final": ("unconfirmed",),
    "unopposed.school_name": ("unconfirmed",), "unopposed.cease_amend": ("unconfirmed",),
}


def test_every_law_rule_is_in_the_rule_set_with_its_flags() -> None:
    rs = load_ruleset("england")
    assert set(rs.rules) == set(LAW_RULES)
    for rule_id, flags in LAW_RULES.items():
        rule = rs.rules[rule_id]
        assert set(flags) <= set(rule.flags), rule_id
        assert rule.legal_source and rule.period_text and rule.title and rule.responsible, rule_id
        assert ("guidance" in rule.flags) == (rule.kind == "guidance"), rule_id
        assert "unconfirmed" not in rule.flags or flags == ("unconfirmed",), rule_id


@pytest.mark.skipif(not LAW_FILE.exists(), reason="law file not available")
def test_the_law_file_has_no_rule_the_rule_set_lacks() -> None:
    text = LAW_FILE.read_text()
    ids = set(re.findall(r"^\| `([a-z0-9_]+\.[a-z0-9_]+)`", text, flags=re.M))
    # Rows naming several ids ("`a` / `b`") list only the first at the start of the line.
    ids |= set(re.findall(r"`(unopposed\.[a-z0-9_]+)`", text))
    assert ids <= set(load_ruleset().rules)


def test_version_and_effective_date() -> None:
    # Issue 11's corrections are a new version; the first stays for clocks started before it.
    rs = load_ruleset("england")
    assert rs.version == "england-2026.1" and rs.effective_from == d("2026-12-01")
    first = load_ruleset("england", d("2026-11-30"))
    assert first.version == "england-2014.1" and first.effective_from == d("2014-09-01")
    assert rs.due_soon_working_days == 10 and "ehc.case.closed" in rs.closing_events
    assert rs.open_points  # law file D, recorded for review
    assert all(r.describe()["rule_id"] == r.rule_id for r in rs.rules.values())


def test_phase_transfer_variants_carry_their_own_sources() -> None:
    rule = load_ruleset().rules["phase_transfer.review"]
    assert {k: v.legal_source for k, v in rule.variants.items()} == {
        "school": "Regs 18(1)(b); 2(1)",
        "post16": "Regs 18(1)(a)",
        "post16_to_post16": "Regs 18(2)",
    }


def test_unknown_rule_set_name() -> None:
    with pytest.raises(RuleSetError, match="wales"):
        load_ruleset("wales")


def _england_raw() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((RULESETS_DIR / "england.yaml").read_text())


def test_a_new_version_applies_to_clocks_started_after_it(tmp_path: Path) -> None:
    # A synthetic law change: from 2030, a 5-week decision period.
    (tmp_path / "england-2014.1.yaml").write_text((RULESETS_DIR / "england-2014.1.yaml").read_text())
    (tmp_path / "england.yaml").write_text((RULESETS_DIR / "england.yaml").read_text())
    raw = _england_raw()
    raw["version"] = "england-2030.1"
    raw["effective_from"] = "2030-01-01"
    for rule in raw["rules"]:
        if rule["rule_id"] == "assessment.decision":
            rule["period"] = {"amount": 5, "unit": "weeks"}
            rule["period_text"] = "5 weeks from the day the request was received"
    (tmp_path / "england-2030.yaml").write_text(yaml.safe_dump(raw))

    history = load_ruleset_history("england", tmp_path)
    assert [v.version for v in history.versions] == ["england-2014.1", "england-2026.1", "england-2030.1"]
    assert load_ruleset("england", d("2029-12-31"), tmp_path).version == "england-2026.1"
    assert load_ruleset("england", d("2030-01-01"), tmp_path).version == "england-2030.1"

    old = compute([event("ehc.request.received", "2029-12-31", id="r-1")], history, CALENDAR, d("2030-01-02"))
    new = compute([event("ehc.request.received", "2030-01-02", id="r-2")], history, CALENDAR, d("2030-01-03"))
    old_decision = next(x for x in old if x.rule_id == "assessment.decision")
    new_decision = next(x for x in new if x.rule_id == "assessment.decision")
    # The case whose clock started in 2029 keeps 6 weeks even when computed in 2030.
    assert (old_decision.ruleset_version, old_decision.due_on) == ("england-2026.1", d("2030-02-11"))
    assert (new_decision.ruleset_version, new_decision.due_on) == ("england-2030.1", d("2030-02-06"))
    assert new_decision.period_text.startswith("5 weeks")
    # Completions still reach clocks started under the older version.
    done = compute(
        [event("ehc.request.received", "2029-12-31", id="r-1"),
         event("ehc.assessment.decided", "2030-01-20", id="r-3", decision="assess", notice_sent_on="2030-01-20")],
        history, CALENDAR, d("2030-03-01"),
    )
    assert next(x for x in done if x.rule_id == "assessment.decision").status == "met"


def test_versions_with_the_same_effective_date_are_rejected() -> None:
    rs = load_ruleset()
    with pytest.raises(RuleSetError, match="share effective_from"):
        RuleSetHistory.of([rs, rs])


def test_registry_lists_the_shipped_rule_sets() -> None:
    assert RuleSetRegistry().names() == ["england"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(lambda r: r["rules"][0].update(kind="maybe"), "kind", id="unknown kind"),
        pytest.param(lambda r: r["rules"][0].update(convention="C99"), "convention", id="unknown convention"),
        pytest.param(lambda r: r["rules"][0].update(starts_on=["ehc.nope"]), "unknown event type", id="bad event"),
        pytest.param(lambda r: r["rules"][0].update(calculator="magic"), "calculator", id="unknown calculator"),
        pytest.param(lambda r: r["rules"][0].update(exceptions=["E9"]), "exceptions", id="unknown exception"),
        pytest.param(lambda r: r["rules"][0].update(colour="red"), "unknown keys", id="unknown key"),
        pytest.param(lambda r: r["rules"].append(dict(r["rules"][0])), "twice", id="duplicate rule"),
        pytest.param(lambda r: r["rules"][0].pop("period"), "period", id="missing period"),
    ],
)
def test_malformed_rule_sets_are_rejected(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    raw = _england_raw()
    mutate(raw)
    with pytest.raises(RuleSetError, match=message):
        parse_ruleset(raw, "test.yaml")


def test_every_shipped_rule_set_reads_the_same_through_libyaml_as_through_the_python_loader() -> None:
    import yaml

    from services.deadlines.domain.rules import RULESETS_DIR, YAML_LOADER

    files = sorted(p for p in RULESETS_DIR.iterdir() if p.suffix in (".yaml", ".yml"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=YAML_LOADER) == yaml.load(text, Loader=yaml.SafeLoader), path  # noqa: S506
