"""The sender's claim reads the due notifications in order and stops at its limit, whatever the
table's statistics say.

Found by the replicas bench: with 10,000 notifications due (a first load; the table not yet
analysed) each claim of 10 took 40-85 ms, because PostgreSQL, expecting two rows, gathered every due
notification, checked each for an earlier unsent one to the same recipient and sorted them all
(after ANALYZE: 0.2 ms). The notifier sent about 100 a second, most of its database time in claims.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from services.notifier.bootstrap import MIGRATIONS, bootstrap
from shared.db import migrate
from shared.local_infra import postgres as pg_infra
from shared.settings import Settings

pytestmark = pytest.mark.infra


async def test_a_claim_reads_in_order_and_stops_at_its_limit_before_any_analyse(isolated: Settings) -> None:
    app = bootstrap(isolated)
    schema = isolated.schema_for("notifier")
    await migrate(app.engine, "notifier", MIGRATIONS, schema)
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        now = datetime.now(UTC)
        address = app.service.sender._deps.crypto.encrypt("caseworker@example.gov.uk")
        # 2,000 cases, five notifications each to their caseworker: one per case may go now
        rows = [(f"n{c:04d}-{k}", f"idem-{c}-{k}", f"case-{c:04d}", f"case-{c:04d}:d{k}", "reminder", "caseworker",
                 f"cw-{c % 50}", "notify_email", address, "caseworker_reminder", "en", "{}", "pending", 0,
                 now - timedelta(minutes=1) + timedelta(microseconds=c), None, now, now)
                for c in range(2000) for k in range(5)]
        await conn.copy_records_to_table("notifications", schema_name=schema, records=rows, columns=[
            "notification_id", "idempotency_key", "case_id", "deadline_id", "kind", "recipient_kind",
            "recipient_ref", "channel", "address_encrypted", "template", "language", "context", "status",
            "attempts", "next_attempt_at", "last_error", "created_at", "updated_at"])

        ran: list[tuple[str, Any]] = []

        def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            ran.append((statement, parameters))

        event.listen(app.engine.sync_engine, "before_cursor_execute", capture)
        try:
            claimed, _ = await app.service.sender._claim(10)
        finally:
            event.remove(app.engine.sync_engine, "before_cursor_execute", capture)
        # the earliest due, one per case (the others wait for their turn)
        assert [c.row.notification_id for c in claimed] == [f"n{c:04d}-0" for c in range(10)]

        # the claim's statement, explained as it ran: after what its transaction set before it
        at = next(i for i, (sql, _) in enumerate(ran) if "earlier" in sql)
        explained = conn.transaction()
        await explained.start()
        try:
            for sql, parameters in ran[:at]:
                if sql.lstrip().upper().startswith("SET"):
                    await conn.execute(sql, *(parameters or ()))
            plan = [r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {ran[at][0]}", *ran[at][1])]
        finally:
            await explained.rollback()
        lines = [line.strip() for line in plan]
        scans = [line for line in lines if "rows=" in line and ("Scan" in line or "Join" in line)]
        read = max(int(line.split("rows=")[1].split()[0]) for line in scans)
        # in index order, stopping once ten can go: tens of rows, not the 10,000 due
        assert read < 200, "\n".join(plan)
        assert not any(line.startswith("-> Sort") or line.startswith("Sort") for line in lines), "\n".join(plan)
    finally:
        await conn.close()
        await app.engine.dispose()
