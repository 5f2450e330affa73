"""Deadlines: the unfired timers of a deadline found through an index of their own.

A recomputed deadline's unfired timers are deleted and planned again. With the deadline-id index
over every timer, PostgreSQL could combine it with ``ix_timers_due`` (fire_at, unfired only) and so
read every unfired timer of the council for each batch: on a table not yet analysed (a council's
first load) that was 40-70 ms a batch at a few tens of thousands of timers, and it grows with the
table. ``ix_timers_unfired`` (deadline_id, unfired only) holds exactly the rows the statement wants.
The old deadline-id index goes: ``uq_timer`` leads with deadline_id and serves any other look-up.

The index is built inside the migration's transaction (replicas take turns on an advisory lock), so
writes to the timers wait while it is built: seconds for millions of timers.

Revision ID: deadlines_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "deadlines_0007"
down_revision = "deadlines_0006"
SCHEMA = "deadlines"
UNFIRED = sa.text("fired_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_timers_unfired", "timers", ["deadline_id"], schema=SCHEMA,
                    postgresql_where=UNFIRED, sqlite_where=UNFIRED)
    op.drop_index("ix_timers_deadline_id", "timers", schema=SCHEMA)


def downgrade() -> None:
    op.create_index("ix_timers_deadline_id", "timers", ["deadline_id"], schema=SCHEMA)
    op.drop_index("ix_timers_unfired", "timers", schema=SCHEMA)
