"""`ehc deadlines rebuild --dry-run` (issue 11, item 2): nothing changes silently.

Properties, on real Kafka and PostgreSQL, over random synthetic caseloads (bench_engine's
generator) and a random change (none, a new rule-set version, a new bank holiday in the override
file, a corrected import):

- a dry run writes and publishes nothing, and reports exactly the changes that the real rebuild
  then publishes (same deadlines, events, old and new values, reasons);
- with nothing changed, a rebuild publishes nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_engine import synthetic_case
from bench.bench_rebuild_dry_run import amended_version
from services.deadlines.bootstrap import bootstrap
from services.deadlines.domain.events import CaseEventRecord
from services.deadlines.entrypoints.rebuild import RebuildReport, rebuild
from shared import topics
from shared.contracts import build_case_event
from shared.kafka import ensure_topics
from shared.local_infra import postgres as pg_infra
from shared.settings import Settings
from shared.topics import topic_specs
from tests.conftest import read_topic
from tests.deadlines.e2e.test_deadlines_rebuild import Quiet, stored
from tests.deadlines.e2e.test_deadlines_service import MovableClock

pytestmark = pytest.mark.infra
NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)
SOURCE = "cms/test/rebuild"


def wire(record: CaseEventRecord, supersedes: str | None = None, **changes: Any) -> bytes:
    data = {**record.data, **changes}
    return build_case_event(record.type, id=data.pop("id", record.id), source=SOURCE, case_id=record.case_id,
                            time=record.recorded_at, supersedes=supersedes,
                            occurred_on=data.pop("occurred_on", record.occurred_on), **data
                            ).model_dump_json(exclude_none=True).encode()


def mediation_case(n: int) -> list[CaseEventRecord]:
    """Health notice due 3 working days after Monday 16 March 2026 (Regs 35-36): a bank holiday
    on the 17th, 18th or 19th moves it."""
    at = datetime(2026, 3, 16, 9, tzinfo=UTC)
    case_id = f"case-med-{n}"
    return [CaseEventRecord(f"{case_id}-1", case_id, "ehc.mediation.requested", date(2026, 3, 16), at,
                            {"includes_health": True})]


def caseload(seed: int, n: int) -> list[list[CaseEventRecord]]:
    rng = random.Random(seed)
    return [*(synthetic_case(seed * 100 + i, rng) for i in range(n)), mediation_case(seed)]


async def publish_all(producer: Any, s: Settings, messages: list[tuple[str, bytes]]) -> None:
    for case_id, value in messages:
        await producer.send_and_wait(s.kafka.topic(topics.CASE_EVENTS), value, key=case_id.encode())


def corrections(cases: list[list[CaseEventRecord]], rng: random.Random) -> list[tuple[str, bytes]]:
    """A corrected import: some events re-sent with a later date (superseding), one retracted."""
    out: list[tuple[str, bytes]] = []
    for events in rng.sample(cases, k=max(1, len(cases) // 2)):
        target = rng.choice(events[1:] or events)
        shifted = target.occurred_on + timedelta(days=rng.randint(1, 20))
        out.append((target.case_id, wire(target, supersedes=target.id, id=target.id + "-fix", occurred_on=shifted)))
    victim = rng.choice(rng.choice(cases))
    out.append((victim.case_id, build_case_event(
        "ehc.event.retracted", id=victim.id + "-retracted", source=SOURCE, case_id=victim.case_id, time=NOW,
        occurred_on=NOW.date(), retracts=victim.id).model_dump_json(exclude_none=True).encode()))
    return out


def published_view(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((e["subject"], e["data"]["deadline_id"], e["type"], e["data"]["due_on"], e["data"]["status"],
                   e["data"].get("previous_due_on"), e["data"].get("previous_status"), e["data"].get("change_reason"))
                  for e in events)


def dry_view(changes: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((c["case_id"], c["deadline_id"], c["event_type"], c["new"]["due_on"], c["new"]["status"],
                   c["old"] and c["old"]["due_on"], c["old"] and c["old"]["status"], c["reason"]) for c in changes)


async def run_rebuild(s: Settings, ruleset: Any = None, dry_run: bool = False,
                      into: list[dict[str, Any]] | None = None) -> RebuildReport:
    app = bootstrap(s, clock=MovableClock(NOW), ruleset=ruleset)
    await app.start(consume=False, schedule=False)
    try:
        return await rebuild(app, progress=Quiet, dry_run=dry_run, on_change=into.append if into is not None else None)
    finally:
        await app.stop()


async def deadline_events(s: Settings, count: int) -> list[dict[str, Any]]:
    if count == 0:
        return []
    """The deadline events on the topic (case.data_quality events, published beside them, left out)."""
    def deadlines_only(rs: list[Any]) -> list[dict[str, Any]]:
        return [e for e in (json.loads(r.value) for r in rs) if e["type"].startswith("deadline.")]

    records = await read_topic(s.kafka.bootstrap_servers, s.kafka.topic(topics.DEADLINE_EVENTS),
                               lambda rs: len(deadlines_only(rs)) >= count, 60)
    return deadlines_only(records)


async def check_dry_run_equals_published(base: Settings, producer: Any, tmp: Path, seed: int, n: int,
                                         change: str) -> list[dict[str, Any]]:
    """One scenario in its own topics and schemas; returns the dry run's changes."""
    tag = "r" + uuid.uuid4().hex[:8]
    kafka = base.kafka.model_copy(update={"topic_prefix": f"{base.kafka.topic_prefix}{tag}."})
    s = base.model_copy(update={"db_schema_prefix": f"{base.db_schema_prefix}{tag}_", "kafka": kafka})
    await ensure_topics(s.kafka, topic_specs(s.kafka.topic_prefix, 3))
    try:
        cases = caseload(seed, n)
        await publish_all(producer, s, [(e.case_id, wire(e)) for events in cases for e in events])
        first = await run_rebuild(s)
        assert first.stored == sum(map(len, cases)) and first.published > 0

        ruleset = None
        if change == "ruleset":
            ruleset = amended_version()
        elif change == "calendar":
            holiday = date(2026, 3, 17 + seed % 3)
            overrides = tmp / f"{tag}-bank-holidays.yaml"
            overrides.write_text(f"extra: [{holiday.isoformat()}]\n")
            s = s.model_copy(update={"deadlines": s.deadlines.model_copy(update={"bank_holiday_overrides": overrides})})
        elif change == "correction":
            await publish_all(producer, s, corrections(cases, random.Random(seed)))

        initial = published_view(await deadline_events(s, first.published))
        before_state = await stored_state(s)
        dry: list[dict[str, Any]] = []
        preview = await run_rebuild(s, ruleset, dry_run=True, into=dry)
        assert await stored_state(s) == before_state  # a dry run writes nothing
        assert len(dry) == preview.published

        real = await run_rebuild(s, ruleset)
        assert real.published == preview.published
        assert real.data_quality_updates == preview.data_quality_updates
        # Partitions interleave: the new events are all events less those of the first rebuild.
        new = Counter(published_view(await deadline_events(s, first.published + real.published)))
        new.subtract(Counter(initial))
        assert sorted(new.elements()) == dry_view(dry)
        if change == "none":
            assert dry == [] and real.published == 0
        expected = {"none": set(), "ruleset": {"ruleset"}, "calendar": {"calendar"}, "correction": {"events"}}[change]
        assert {c["reason"] for c in dry} <= expected

        again: list[dict[str, Any]] = []  # once published, nothing is left to change
        assert (await run_rebuild(s, ruleset, dry_run=True, into=again)).published == 0 and again == []
        return dry
    finally:
        conn = await asyncpg.connect(pg_infra.dsn())
        try:
            for service in ("deadlines",):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{s.schema_for(service)}" CASCADE')
        finally:
            await conn.close()


async def stored_state(s: Settings) -> dict[str, Any]:
    app = bootstrap(s, clock=MovableClock(NOW))
    try:
        return await stored(app)
    finally:
        await app.engine.dispose()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6),
       change=st.sampled_from(["none", "ruleset", "calendar", "correction"]))
async def test_a_dry_run_equals_the_published_changes(isolated: Settings, producer: Any, tmp_path: Path,
                                                       seed: int, n: int, change: str) -> None:
    await check_dry_run_equals_published(isolated, producer, tmp_path, seed, n, change)


@pytest.mark.parametrize("change", ["ruleset", "calendar", "correction"])
async def test_each_kind_of_change_is_reported_with_its_reason(isolated: Settings, producer: Any, tmp_path: Path,
                                                               change: str) -> None:
    """Not vacuous: each kind of change does change something, and says why."""
    dry = await check_dry_run_equals_published(isolated, producer, tmp_path, 7, 4, change)
    assert {c["reason"] for c in dry} == {"correction": {"events"}}.get(change, {change})
    for c in dry:
        assert c["change"] in ("added", "moved", "status", "removed")
        if c["change"] == "moved":
            assert c["old"]["due_on"] != c["new"]["due_on"]


async def test_the_command_line_dry_run_then_rebuild(isolated: Settings, producer: Any, tmp_path: Path) -> None:
    """`ehc deadlines rebuild --dry-run --changes FILE` with a new bank holiday, then the rebuild."""
    from typer.testing import CliRunner

    from services.cli import app as ehc
    from tests.e2e.harness import service_env

    await publish_all(producer, isolated, [(e.case_id, wire(e)) for e in mediation_case(1)])
    runner = CliRunner()
    env = service_env(isolated)
    first = await asyncio.to_thread(runner.invoke, ehc, ["deadlines", "rebuild"], env=env)
    assert first.exit_code == 0, first.output
    assert "recomputed 1 cases; published" in first.stdout
    overrides = tmp_path / "bank-holidays.yaml"
    overrides.write_text("extra: [2026-03-18]\n")
    env["EHC_DEADLINES__BANK_HOLIDAY_OVERRIDES"] = str(overrides)
    changes = tmp_path / "changes.jsonl"
    dry = await asyncio.to_thread(runner.invoke, ehc, ["deadlines", "rebuild", "--dry-run", "--changes",
                                                       str(changes)], env=env)
    assert dry.exit_code == 0, dry.output
    assert "dry run: 1 changes would be published in 1 cases (1 moved; reasons: 1 calendar)" in dry.stdout
    [moved] = [json.loads(line) for line in changes.read_text().splitlines()]
    assert (moved["deadline_id"], moved["old"]["due_on"], moved["new"]["due_on"], moved["reason"]) == (
        "case-med-1:mediation.health_notice:1", "2026-03-19", "2026-03-20", "calendar")
    real = await asyncio.to_thread(runner.invoke, ehc, ["deadlines", "rebuild"], env=env)
    assert real.exit_code == 0 and "published 1 changes" in real.stdout


async def test_a_dry_run_previews_the_data_quality_updates_the_rebuild_publishes(
        isolated: Settings, producer: Any) -> None:
    """A real rebuild publishes ``case.data_quality`` when a case's warnings change; its dry run shows
    each of those updates (case, old and new warnings) and counts them, writing nothing."""
    from tests.e2e.harness import case_event

    case, good = "case-dq-rebuild", "case-dq-good"
    for value, key in [
        (case_event("dq-p", case, "ehc.plan.issued", "2025-05-12", plan_id="p-1"), case),
        (case_event("dq-m", case, "ehc.review.meeting_held", "2026-03-10"), case),
        (case_event("dq-d", case, "ehc.review.decision_issued", "2026-03-02", outcome="maintain"), case),
        (case_event("dq-g", good, "ehc.request.received", "2026-03-02", route="request", requested_by="parent"),
         good),
    ]:
        await producer.send_and_wait(isolated.kafka.topic(topics.CASE_EVENTS), value, key=key.encode())

    async def dry_run() -> tuple[RebuildReport, list[dict[str, Any]]]:
        app = bootstrap(isolated, clock=MovableClock(NOW))
        await app.start(consume=False, schedule=False)
        seen: list[dict[str, Any]] = []
        try:
            report = await rebuild(app, progress=Quiet, dry_run=True, on_quality=seen.append)
        finally:
            await app.stop()
        return report, seen

    report, seen = await dry_run()
    assert await stored_state(isolated) == {}  # nothing written
    assert report.data_quality_updates == 1
    [update] = seen
    assert (update["case_id"], update["event_type"], update["old"]) == (case, "case.data_quality", [])
    assert [w["code"] for w in update["new"]] == ["review_decision_before_meeting"]
    assert "1 data-quality updates" in report.summary()

    real = await run_rebuild(isolated)
    assert real.data_quality_updates == report.data_quality_updates
    published = await read_topic(isolated.kafka.bootstrap_servers, isolated.kafka.topic(topics.DEADLINE_EVENTS),
                                 lambda rs: any(json.loads(r.value)["type"] == "case.data_quality" for r in rs), 60)
    [event] = [e for e in map(json.loads, (r.value for r in published)) if e["type"] == "case.data_quality"]
    assert (event["subject"], event["data"]["warnings"]) == (case, update["new"])

    # Corrected: the next dry run shows the warning going, from the stored one to none.
    corrected = json.loads(case_event("dq-d2", case, "ehc.review.decision_issued", "2026-03-12", outcome="maintain"))
    corrected["supersedes"] = "dq-d"
    await producer.send_and_wait(isolated.kafka.topic(topics.CASE_EVENTS), json.dumps(corrected).encode(),
                                 key=case.encode())
    report, seen = await dry_run()
    assert report.data_quality_updates == 1
    assert [(u["case_id"], u["old"], u["new"]) for u in seen] == [(case, update["new"], [])]
    assert (await run_rebuild(isolated)).data_quality_updates == 1


class Interrupt(Exception):
    pass


def interrupted_after(pages: int) -> type:
    """A progress bar that stops the rebuild after ``pages`` pages of recomputed cases (Ctrl-C)."""
    class Stopping(Quiet):
        def __init__(self, label: str, total: int) -> None:
            super().__init__(label, total)
            self.label, self.pages = label, 0

        def update(self, completed: int, text: str = "") -> None:
            if self.label.startswith("recomputing"):
                self.pages += 1
                if self.pages >= pages:
                    raise Interrupt
    return Stopping


async def test_a_rebuild_in_small_pages_or_interrupted_and_rerun_ends_in_the_same_state(
        isolated: Settings, producer: Any) -> None:
    """Paging (events stored and cases recomputed a few at a time) changes nothing; a rebuild
    interrupted half way then re-run ends in the same state and publishes each change once."""
    cases = caseload(5, 7)
    events = sum(map(len, cases))
    await publish_all(producer, isolated, [(e.case_id, wire(e)) for c in cases for e in c])
    await publish_all(producer, isolated, [("case-bad", b'{"id": "bad-1", "type": "ehc.request.received"}')])

    def schema(name: str) -> Settings:
        return isolated.model_copy(update={"db_schema_prefix": f"{isolated.db_schema_prefix}{name}_"})

    async def run(s: Settings, progress: Any = Quiet, **sizes: int) -> RebuildReport:
        app = bootstrap(s, clock=MovableClock(NOW))
        await app.start(consume=False, schedule=False)
        try:
            return await rebuild(app, progress=progress, **sizes)
        finally:
            await app.stop()

    whole = await run(schema("whole"))
    paged = await run(schema("paged"), batch=2, store_batch=3)
    assert (whole.read, whole.stored, whole.invalid, whole.cases) == (
        paged.read, paged.stored, paged.invalid, paged.cases) == (events + 1, events, 1, len(cases))
    assert paged.published == whole.published > 0
    assert await stored_state(schema("paged")) == await stored_state(schema("whole"))

    with pytest.raises(Interrupt):
        await run(schema("cut"), interrupted_after(2), batch=2, store_batch=3)
    assert 0 < len(await stored_state(schema("cut"))) < len(await stored_state(schema("whole")))
    rerun = await run(schema("cut"), batch=2, store_batch=3)
    assert (rerun.stored, rerun.invalid, rerun.cases) == (0, 1, len(cases))  # known events skipped, not the bad
    assert 0 < rerun.published < whole.published
    assert await stored_state(schema("cut")) == await stored_state(schema("whole"))
    # Three deployments published the same changes (deterministic ids): each id three times, no more.
    published = await deadline_events(isolated, 3 * whole.published)
    assert set(Counter(e["id"] for e in published).values()) == {3}
