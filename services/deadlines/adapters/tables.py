"""The deadlines service's tables, in the ``deadlines`` schema (see shared.db)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)

from shared.db import UtcDateTime
from shared.messaging.tables import held_records_table, outbox_table, processed_events_table

SCHEMA = "deadlines"
metadata = MetaData()
processed_events = processed_events_table(metadata, SCHEMA)
outbox = outbox_table(metadata, SCHEMA)
held_records = held_records_table(metadata, SCHEMA)

# Each case's history, as received: the engine recomputes the case from it every time.
case_events = Table(
    "case_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("case_id", String(200), nullable=False, index=True),
    Column("source", String(200), nullable=False),
    Column("type", String(100), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("supersedes", String(200), nullable=True),
    Column("data", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False, server_default=func.now()),
    schema=SCHEMA,
)

# Routing and the rule-set version each case started under.
cases = Table(
    "cases",
    metadata,
    Column("case_id", String(200), primary_key=True),
    Column("team_id", String(200), nullable=True, index=True),
    Column("caseworker_id", String(200), nullable=True, index=True),
    Column("area_id", String(200), nullable=True),
    Column("ruleset_version", String(50), nullable=True),
    # A data-quality problem that stops the case's deadlines being computed (shown by /v1/problems).
    Column("problem", String(500), nullable=True),
    # Its data-quality warnings (shared.data_quality, and the problem as an error), as published in
    # the latest case.data_quality event; NULL until first computed, read as none.
    Column("data_quality", JSON, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False, server_default=func.now()),
    schema=SCHEMA,
)

deadlines = Table(
    "deadlines",
    metadata,
    Column("deadline_id", String(400), primary_key=True),
    Column("case_id", String(200), nullable=False, index=True),
    Column("rule_id", String(100), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("responsible", String(50), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("team_id", String(200), nullable=True),
    Column("caseworker_id", String(200), nullable=True),
    Column("explanation", JSON, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False, server_default=func.now()),
    # Three facts of the explanation the reports count, as real columns (written with it; migration 0006):
    # the trigger event's date (the request, for plan.final), the completion date (the plan's issue), the
    # exception code (E1-E5) if one was recorded.
    Column("trigger_date", Date, nullable=True),
    Column("completed_on", Date, nullable=True),
    Column("exception", String(50), nullable=True),
    Index("ix_deadlines_status_due", "status", "due_on"),
    Index("ix_deadlines_team_status", "team_id", "status"),
    Index("ix_deadlines_caseworker_status", "caseworker_id", "status"),
    # covering (PostgreSQL): the plans issued with their dates; the dashboards' counts by team and caseworker
    Index("ix_deadlines_rule_status", "rule_id", "status",
          postgresql_include=["trigger_date", "completed_on", "exception"]),
    Index("ix_deadlines_summary", "team_id", "caseworker_id", "case_id",
          postgresql_include=["status", "kind", "rule_id", "due_on"]),
    schema=SCHEMA,
)

# DESIGN §4: the database owns the timers. A tick claims due rows with FOR UPDATE SKIP LOCKED.
timers = Table(
    "timers",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("deadline_id", String(400), nullable=False),
    Column("case_id", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # reminder | breach | nudge
    Column("offset_days", Integer, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("fire_at", UtcDateTime(), nullable=False),
    Column("fired_at", UtcDateTime(), nullable=True),
    UniqueConstraint("deadline_id", "kind", "offset_days", "due_on", "fire_at", name="uq_timer"),
    # the due timers, in order (deadlines_0001): claimed earliest first, a window at a time
    Index("ix_timers_due", "fire_at", postgresql_where=text("fired_at IS NULL")),
    # a deadline's unfired timers, replaced when it moves (deadlines_0007); uq_timer serves the rest
    Index("ix_timers_unfired", "deadline_id", postgresql_where=text("fired_at IS NULL"),
          sqlite_where=text("fired_at IS NULL")),
    schema=SCHEMA,
)
