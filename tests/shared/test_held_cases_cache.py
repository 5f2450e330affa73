"""The consumer's held-case check is answered from memory while the held records do not change, and
sees at once what another replica parked or released (shared.dead_letters.DeadLetters.held)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import bootstrap
from shared.db import create_engine_for, session_factory
from shared.dead_letters import DeadLetters, Original, key_hash
from shared.settings import Settings

pytestmark = pytest.mark.infra


def record(case: bytes, offset: int) -> Original:
    return Original("t.case-events", 0, offset, case, b'{"bad": true}')


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
async def test_a_record_parked_by_one_replica_holds_the_case_in_the_other(isolated: Settings, database: str,
                                                                          tmp_path: Path) -> None:
    if database == "sqlite":
        isolated = isolated.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'held.db'}"})
    app = bootstrap(isolated)
    await app.start(consume=False, schedule=False)  # migrations; its producer sends the dead letters
    engines = [create_engine_for(isolated, "deadlines") for _ in range(2)]
    try:
        one, other = (DeadLetters("deadlines", isolated, session_factory(e), tables.held_records, app.producer)
                      for e in engines)
        statements: list[str] = []
        event.listen(engines[1].sync_engine, "before_cursor_execute",
                     lambda _c, _cur, sql, *_a: statements.append(sql))
        x, y = key_hash(b"case-x"), key_hash(b"case-y")
        assert x is not None and y is not None
        assert await other.held("deadlines", [x, y]) == {}  # nothing held: remembered

        first = await one.park("deadlines", record(b"case-x", 1), "invalid: something", 1)
        assert await other.held("deadlines", [x, y]) == {x: [first]}  # the other replica's park is seen
        behind = await one.park("deadlines", record(b"case-x", 2), "held", 0, held_behind=first)
        assert await other.held("deadlines", [y, x]) == {x: [first, behind]}  # in order

        statements.clear()
        for _ in range(3):  # unchanged: one small check each time, the held rows are not read again
            assert await other.held("deadlines", [x]) == {x: [first, behind]}
        reads = [s for s in statements if "case_key_sha256" in s]
        assert len(statements) == 3 and not reads

        await one.release("deadlines", first)
        assert await other.held("deadlines", [x]) == {x: [behind]}
        await other.release("deadlines", behind)  # its own release, then the other replica's park
        assert await other.held("deadlines", [x]) == {}
        third = await one.park("deadlines", record(b"case-y", 3), "invalid: other", 1)
        assert await other.held("deadlines", [x, y]) == {y: [third]}
        assert await other.held("notifier-contacts", [y]) == {}  # per consumer
    finally:
        for e in engines:
            await e.dispose()
        await app.stop()
