"""Deadlines: the three facts the reports count (trigger date, completion date, exception) as real
columns, copied from each deadline's explanation and written with it from now on, so the dashboards'
20-week figures read dates instead of parsing every plan's JSON; and two covering indexes (PostgreSQL
reads them without the table's wide rows, whose explanations are most of their size):

- ``ix_deadlines_rule_status`` (rule, status) now carries the three columns: the plans issued, with
  their dates, for the 20-week figures;
- ``ix_deadlines_summary`` (team, caseworker, case) with status, kind, rule and due date: the counts
  by team and caseworker of a dashboard (the whole council's is every deadline).

Revision ID: deadlines_0006
"""

import sqlalchemy as sa
from alembic import context, op

revision = "deadlines_0006"
down_revision = "deadlines_0004"
SCHEMA = "deadlines"
COLUMNS = (("trigger_date", sa.Date), ("completed_on", sa.Date), ("exception", sa.String(50)))


def _real_schema() -> str | None:
    """ALTER TABLE is rendered by alembic itself, without the schema translation: the real schema."""
    return context.config.attributes.get("schema")


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("deadlines", sa.Column(name, type_, nullable=True), schema=_real_schema())
    _backfill(op.get_bind().dialect.name)
    op.drop_index("ix_deadlines_rule_status", "deadlines", schema=SCHEMA)
    op.create_index("ix_deadlines_rule_status", "deadlines", ["rule_id", "status"], schema=SCHEMA,
                    postgresql_include=["trigger_date", "completed_on", "exception"])
    op.create_index("ix_deadlines_summary", "deadlines", ["team_id", "caseworker_id", "case_id"], schema=SCHEMA,
                    postgresql_include=["status", "kind", "rule_id", "due_on"])


def _backfill(dialect: str) -> None:
    """Each deadline's columns from its explanation (a date that cannot be read stays NULL, as the
    reports read it: unusable). Core statements, so the schema is translated like the rest."""
    explanation = sa.column("explanation", sa.JSON)
    deadlines = sa.table("deadlines", explanation, *(sa.column(n, t) for n, t in COLUMNS), schema=_real_schema())

    def day(key: str) -> sa.ColumnElement[object]:
        text = explanation[key].as_string()
        if dialect == "postgresql":
            return sa.case((text.op("~")(r"^\d{4}-\d{2}-\d{2}$"), sa.cast(text, sa.Date)), else_=None)
        return sa.func.date(text)  # SQLite: the ISO day, or NULL when it is not one

    op.execute(deadlines.update().values(trigger_date=day("trigger_date"), completed_on=day("completed_on"),
                                         exception=explanation["exception"].as_string()))


def downgrade() -> None:
    op.drop_index("ix_deadlines_summary", "deadlines", schema=SCHEMA)
    op.drop_index("ix_deadlines_rule_status", "deadlines", schema=SCHEMA)
    op.create_index("ix_deadlines_rule_status", "deadlines", ["rule_id", "status"], schema=SCHEMA)
    for name, _ in reversed(COLUMNS):
        op.drop_column("deadlines", name, schema=_real_schema())
