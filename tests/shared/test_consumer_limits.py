"""Decoding limits and failure descriptions of the per-record isolation (shared.consumer)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from shared.consumer import Undecodable, check_json, describe_failure, is_transient
from shared.contracts import parse_case_event
from shared.settings import DeadLetterSettings

LIMITS = DeadLetterSettings(max_record_bytes=10_000, max_json_depth=8)


def test_deep_nesting_is_refused_before_any_parser_recurses() -> None:
    with pytest.raises(Undecodable, match="nested deeper than 64"):
        check_json(b"[" * 50_000 + b"]" * 50_000, DeadLetterSettings())  # default limits, 100 kB: a scan
    check_json(json.dumps({"a": [[[[[[1]]]]]]}).encode(), LIMITS)  # 7 levels: fine


def test_brackets_inside_strings_do_not_count() -> None:
    check_json(json.dumps({"text": '[[[[[[[[[[[[{{{{{{{{{{ \\" ]]'}).encode(), LIMITS)


def test_a_record_over_the_size_limit_is_refused() -> None:
    with pytest.raises(Undecodable, match="over the limit of 10000"):
        check_json(b" " * 10_001, LIMITS)


def test_failures_are_described_without_the_content() -> None:
    with pytest.raises(Exception) as invalid:
        parse_case_event(b'{"specversion": "1.0", "type": "ehc.request.received", "subject": "Jane Doe"}')
    described = describe_failure(invalid.value)
    assert described.startswith("invalid: ") and "Jane" not in described
    secret = DataError("INSERT ... VALUES ('Jane Doe')", {"name": "Jane Doe"}, Exception("bad byte"))
    assert describe_failure(secret) == "database refused it: Exception" and "Jane" not in describe_failure(secret)
    assert describe_failure(KeyError("Jane Doe")) == "KeyError"


def test_only_infrastructure_failures_are_transient() -> None:
    assert is_transient(OperationalError("SELECT 1", {}, ConnectionRefusedError()))
    assert is_transient(ConnectionResetError())
    assert not is_transient(DataError("INSERT", {}, Exception("0x00")))
    assert not is_transient(RecursionError())


@pytest.mark.parametrize("error", ["CannotConnectNowError", "AdminShutdownError", "TooManyConnectionsError",
                                   "ConnectionDoesNotExistError"])
def test_a_database_starting_up_or_shutting_down_is_transient_not_the_records_fault(error: str) -> None:
    """PostgreSQL restarting answers "the database system is starting up" (57P03) or "terminating
    connection due to administrator command" (57P01); SQLAlchemy's asyncpg dialect raises them as a
    plain DBAPIError (not OperationalError). A record handled then is retried later, never parked."""
    import asyncpg
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, dialect

    def as_sqlalchemy_raises(raw: Exception) -> DBAPIError:
        dbapi = dialect.import_dbapi()
        try:
            AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, raw)
        except Exception as translated:  # noqa: BLE001 - the dialect's translation
            return DBAPIError.instance("SELECT 1", None, translated, dbapi.Error)
        raise AssertionError("not translated")

    assert is_transient(as_sqlalchemy_raises(getattr(asyncpg.exceptions, error)("starting up")))
    assert not is_transient(as_sqlalchemy_raises(asyncpg.exceptions.PostgresSyntaxError("syntax error")))
    assert not is_transient(as_sqlalchemy_raises(asyncpg.exceptions.UniqueViolationError("duplicate key")))
