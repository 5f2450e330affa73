"""Deadlines: an index by rule and status, for the dashboards' figures of one rule (plans issued, for
the 20-week timeliness; annual reviews overdue) without reading every deadline of the council.

Revision ID: deadlines_0004
"""

from alembic import op

revision = "deadlines_0004"
down_revision = "deadlines_0003"
SCHEMA = "deadlines"


def upgrade() -> None:
    op.create_index("ix_deadlines_rule_status", "deadlines", ["rule_id", "status"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_deadlines_rule_status", "deadlines", schema=SCHEMA)
