"""Benchmark: the notifier sender's claim against a long backlog (issue 12, item 3).

    .venv/bin/python bench/bench_notifier_claim.py [--backlog 200000] [--repeat 5]

Every pass of every sender worker of every replica runs the claim (a few due rows, FOR UPDATE
SKIP LOCKED); if it costs more as the backlog grows, more replicas add database work, not
throughput. In one schema of the local PostgreSQL: ``--backlog`` due rows, five per case to the
case's caseworker, due in the order they were planned (as deadline events plan them). Prints the
claim's time (EXPLAIN ANALYZE, median of ``--repeat``) as the sender runs it now (the due rows in
order from a partial index, each checked against the earlier unsent rows of its case and recipient)
and, as the baseline in the same run, the claim before issue 12 (every due row sorted by due time)
on the indexes it had, with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import and_, exists, select, text  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from services.notifier.adapters import tables  # noqa: E402
from services.notifier.bootstrap import MIGRATIONS, SERVICE  # noqa: E402
from services.notifier.service_layer.sending import CLAIMABLE, UNSENT  # noqa: E402
from shared.db import create_engine_for, migrate  # noqa: E402
from shared.local_infra import postgres as pg_infra  # noqa: E402
from shared.settings import Settings  # noqa: E402

NEW_INDEXES = ("ix_notifications_claimable", "ix_notifications_unsent")


def claim_sql(schema: str, *, in_order: bool) -> str:
    n = tables.notifications
    due = and_(n.c.status.in_(CLAIMABLE), n.c.next_attempt_at <= datetime.now(UTC))
    if in_order:  # as services/notifier/service_layer/sending.py claims
        earlier = n.alias("earlier")
        due = and_(due, ~exists().where(earlier.c.case_id == n.c.case_id, earlier.c.recipient_ref == n.c.recipient_ref,
                                        earlier.c.seq < n.c.seq, earlier.c.status.in_(UNSENT)))
        q = select(n).where(due).order_by(n.c.next_attempt_at, n.c.seq)
    else:  # the claim before: the due rows by due time
        q = select(n).where(due).order_by(n.c.next_attempt_at)
    q = q.limit(10).with_for_update(skip_locked=True, of=n)
    sql = str(q.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    return sql.replace("notifier.", f'"{schema}".')


async def timed(conn: Any, sql: str, repeat: int) -> tuple[float, list[str]]:
    """Median execution time (ms) of the statement, and its last plan."""
    times, plan = [], []
    for _ in range(repeat):
        plan = list((await conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + sql))).scalars().all())
        times.append(float(plan[-1].split(":")[1].split()[0]))
    return statistics.median(times), plan


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    await asyncio.to_thread(pg_infra.start)
    settings = Settings(environment="test", database_url=pg_infra.database_url(),
                        db_schema_prefix=f"bench{uuid.uuid4().hex[:6]}_")
    engine = create_engine_for(settings, SERVICE)
    schema = settings.schema_for(SERVICE)
    await migrate(engine, SERVICE, MIGRATIONS, schema)
    cases = max(1, args.backlog // 5)
    try:
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(text(f"""
                INSERT INTO "{schema}".notifications (notification_id, idempotency_key, case_id, deadline_id, kind,
                    recipient_kind, recipient_ref, channel, address_encrypted, template, language, context, status,
                    attempts, next_attempt_at, created_at, updated_at)
                SELECT md5(g::text), md5(g::text), 'case-' || (g % {cases}), 'case-' || (g % {cases}) || ':rule:1',
                    'kind-' || g, 'caseworker', 'cw-' || (g % 40), 'smtp', '\\x00', 'caseworker_reminder', 'en', '{{}}',
                    'pending', 0, now() - interval '1 millisecond' * ({args.backlog} - g), now(), now()
                FROM generate_series(1, {args.backlog}) AS g"""))
            await conn.execute(text(f'ANALYZE "{schema}".notifications'))
        print(f"backlog: {args.backlog:,} due notifications of {cases:,} cases (made in "
              f"{time.perf_counter() - started:.1f} s)")
        async with engine.connect() as conn:
            now_ms, now_plan = await timed(conn, claim_sql(schema, in_order=True), args.repeat)
        async with engine.begin() as conn:
            for index in NEW_INDEXES:
                await conn.execute(text(f'DROP INDEX "{schema}".{index}'))
        async with engine.connect() as conn:
            before_ms, before_plan = await timed(conn, claim_sql(schema, in_order=False), args.repeat)
        print(f"claim now (in order per case and recipient, partial indexes): {now_ms:.2f} ms")
        print("  " + "\n  ".join(line for line in now_plan if "Scan" in line or "Join" in line or "Sort" in line))
        print(f"claim before (every due row sorted): {before_ms:.2f} ms")
        print("  " + "\n  ".join(line for line in before_plan if "Scan" in line or "Sort" in line))
        print(f"before / now: {before_ms / now_ms:,.0f}x; a sender worker's claim at most "
              f"{1000 / now_ms:,.0f} a second now, {1000 / before_ms:,.1f} before")
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
