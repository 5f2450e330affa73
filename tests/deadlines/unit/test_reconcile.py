"""Shadow mode (issue 11, item 4): each kind of disagreement between our deadlines and the
council's records, with the rule that explains ours; and `ehc report reconcile` from files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from engine_testkit import CALENDAR, HISTORY
from typer.testing import CliRunner

from services.cli import app as ehc
from services.deadlines.domain import CaseEventRecord, compute
from services.deadlines.domain.reconcile import TheirRecord, reconcile, sen2_status
from services.intake.domain.sen2_synthetic import write_sen2_xml

AS_OF = date(2026, 3, 1)


def case(case_id: str, received: date, issued: date | None, exception: bool = False) -> list:  # type: ignore[type-arg]
    at = datetime(2025, 1, 1, tzinfo=UTC)
    events = [CaseEventRecord(f"{case_id}-r", case_id, "ehc.request.received", received, at, {"route": "request"})]
    if issued:
        events.append(CaseEventRecord(f"{case_id}-p", case_id, "ehc.plan.issued", issued, at, {"plan_id": "p"}))
    if exception:
        events.append(CaseEventRecord(f"{case_id}-x", case_id, "ehc.exception.recorded", received, at,
                                      {"exception": "E3", "rule_ids": ["plan.final"], "reason": "test"}))
    return compute(events, HISTORY, CALENDAR, AS_OF)


# Request 6 January 2025: the final plan is due 20 weeks later, 26 May 2025 (Regs 13(2)); issued
# 30 June 2025, late.
OURS = case("c-1", date(2025, 1, 6), date(2025, 6, 30))


def theirs(**changes) -> TheirRecord:  # type: ignore[no-untyped-def]
    due, status = sen2_status(date(2025, 1, 6), "Y", date(2025, 6, 30), AS_OF)
    values = {"case_id": "c-1", "rule_id": "plan.final", "source": "sen2", "ref": "person 1", "due_on": due,
              "status": status, "exception": False, "trigger_on": date(2025, 1, 6)} | changes
    return TheirRecord(**values)


def kinds(found) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.kind for d in found]


def test_agreement_gives_nothing() -> None:
    assert reconcile(OURS, [theirs()]) == []


def test_missing_in_ours() -> None:
    found = reconcile(OURS, [theirs(), theirs(case_id="c-2", ref="person 2")])
    assert kinds(found) == ["missing_in_ours"] and found[0].case_id == "c-2" and found[0].ours is None
    assert "no deadline of ours" in found[0].explanation


def test_missing_in_theirs() -> None:
    found = reconcile([*OURS, *case("c-3", date(2025, 3, 3), None)], [theirs()])
    assert kinds(found) == ["missing_in_theirs"] and found[0].case_id == "c-3"
    assert found[0].to_dict()["ours"]["due_on"] == "2025-07-21"
    assert "20 weeks from the day the request was received (Regs 13(2))" in found[0].explanation


def test_date_differs() -> None:
    """Their system counted 20 weeks from a day later (the day the request was logged)."""
    found = reconcile(OURS, [theirs(due_on=date(2025, 5, 27), trigger_on=date(2025, 1, 7))])
    assert kinds(found) == ["date_differs"]
    assert found[0].detail == "ours is due 2025-05-26, theirs 2025-05-27 (-1 days)"
    assert found[0].explanation.startswith("plan.final: 20 weeks from the day the request was received")


def test_status_differs_late_against_on_time() -> None:
    found = reconcile(OURS, [theirs(status="on time")])
    assert kinds(found) == ["status_differs"] and found[0].detail == "ours: late; theirs: on time"


def test_exception_differs() -> None:
    found = reconcile(OURS, [theirs(exception=True)])
    assert kinds(found) == ["exception_differs"]
    assert found[0].detail == "ours: no exception; theirs: an exception"
    with_exception = case("c-4", date(2025, 1, 6), date(2025, 6, 30), exception=True)
    assert reconcile(with_exception, [theirs(case_id="c-4", exception=True)]) == []


def test_a_cancelled_deadline_of_ours_is_not_missing_in_theirs() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    refused = compute([CaseEventRecord("r", "c-5", "ehc.request.received", date(2025, 1, 6), at, {}),
                       CaseEventRecord("d", "c-5", "ehc.assessment.decided", date(2025, 2, 3), at,
                                       {"decision": "refuse", "notice_sent_on": date(2025, 2, 3)})],
                      HISTORY, CALENDAR, AS_OF)
    assert reconcile(refused, [], rule_ids=["plan.final"]) == []


runner = CliRunner()


def test_reconcile_from_an_sen2_return_and_a_council_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SEN2 -> events (intake's importer, nothing published) -> engine -> compared with the same
    return's facts (they agree) and with the council's CSV of due dates (they do not)."""
    sen2 = write_sen2_xml(tmp_path / "return.xml", 80, 2025, 11, lea="919").path
    base = runner.invoke(ehc, ["report", "reconcile", "--sen2", str(sen2), "--as-of", "2026-03-01", "--json"])
    assert base.exit_code == 0, base.output
    lines = [json.loads(line) for line in base.stdout.splitlines()]
    assert not [d for d in lines if d["kind"] in ("date_differs", "exception_differs")]

    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("source: cms/test\ncolumns: {case_ref: Ref, rule: Stage, due_on: Due, status: Status, "
                       "exception: Exc}\ndate_format: '%d/%m/%Y'\nrules: {Final plan: plan.final, Decision: "
                       "assessment.decision}\nstatuses: {Done late: late, Done on time: on time}\n")
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps({
        "specversion": "1.0", "id": f"e-{n}", "source": "cms/test", "type": t, "subject": "c-feed", "time":
        "2025-01-06T09:00:00Z", "data": {"occurred_on": on, **data}}) for n, (t, on, data) in enumerate([
            ("ehc.request.received", "2025-01-06", {"route": "request"}),
            ("ehc.assessment.decided", "2025-02-24", {"decision": "assess", "notice_sent_on": "2025-02-24"}),
            ("ehc.plan.issued", "2025-06-30", {"plan_id": "p"})])))
    council = tmp_path / "council.csv"
    council.write_text("Ref,Stage,Due,Status,Exc\n"
                       "c-feed,Final plan,26/05/2025,Done on time,yes\n"  # status and exception differ
                       "c-feed,Decision,18/02/2025,Done late,\n"  # date differs (ours 17 Feb), status agrees
                       "c-unknown,Final plan,01/06/2025,,\n"  # missing in ours
                       "c-feed,Annual review,01/01/2026,,\n")  # a stage the mapping does not know
    mapping.write_text(mapping.read_text() + "case_ref_is_case_id: true\n")
    result = runner.invoke(ehc, ["report", "reconcile", "--events", str(events), "--council-csv", str(council),
                                 "--mapping", str(mapping), "--as-of", "2026-03-01", "--json"])
    assert result.exit_code == 0, result.output
    found = sorted((d["case_id"], d["rule_id"], d["kind"]) for d in map(json.loads, result.stdout.splitlines()))
    assert found == [("c-feed", "assessment.decision", "date_differs"),
                     ("c-feed", "plan.final", "exception_differs"),
                     ("c-feed", "plan.final", "status_differs"),
                     ("c-unknown", "plan.final", "missing_in_ours")]
    assert "note: council.csv row 5: stage 'Annual review' is not in the mapping's rules" in result.stderr

    table = runner.invoke(ehc, ["report", "reconcile", "--events", str(events), "--council-csv", str(council),
                                "--mapping", str(mapping), "--as-of", "2026-03-01"])
    assert "case c-feed" in table.stdout and "ours: plan.final: 20 weeks from the day the request was received" \
        in table.stdout
    assert "4 disagreements in 2 cases" in table.stdout
