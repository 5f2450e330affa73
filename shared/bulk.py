"""A batch's multi-row writes, compiled once: on PostgreSQL one ``INSERT ... SELECT FROM unnest(...)``
(or a COPY) on the asyncpg connection of the session's own transaction; elsewhere (SQLite, the
embedded default) the same write through SQLAlchemy.

Through SQLAlchemy a multi-row statement is compiled again for every batch and every value of
every row goes through its parameter handling; here the SQL text depends only on the table and
the columns, is built once per process, and asyncpg keeps it prepared per connection. The rows
are sent as one array per column. What the caller sees is what SQLAlchemy gives: the writes are
part of the session's transaction, values pass through the columns' own bind processing (JSON
to the same values as SQLAlchemy's, by orjson: :func:`json_text`; ``UtcDateTime`` checks), and
a database error is raised as SQLAlchemy's exception (``IntegrityError``, ``OperationalError``,
``connection_invalidated`` when the connection is gone), so retries and dead-lettering see no difference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from functools import cache
from typing import Any, TypeVar

import orjson
from sqlalchemy import Column, Table, TypeDecorator, or_
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import JSON

from shared.db import upsertable_insert

T = TypeVar("T")


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _driver(session: AsyncSession) -> tuple[AsyncConnection, Any]:
    """The session's connection and its asyncpg connection, inside the session's transaction."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if not driver.is_in_transaction():  # SQLAlchemy's driver adapter begins lazily, at the first statement
        await raw.dbapi_connection._start_transaction()
    return conn, driver


def _qualified(conn: AsyncConnection, table: Table) -> tuple[str | None, str]:
    translate = conn.sync_connection.get_execution_options().get("schema_translate_map") or {}
    schema = translate.get(table.schema, table.schema)
    return schema, (f'"{schema}"."{table.name}"' if schema else f'"{table.name}"')


@cache
def _pg_type(column: Column[Any], dialect: Any) -> str:
    """The column's type for an array cast, without its length (a cast to varchar(n) would cut a
    long value short; the column's own length still refuses it on insert)."""
    if _is_json(column):
        return "text"
    return re.sub(r"\(.*?\)", "", column.type.compile(dialect=dialect))


def _is_json(column: Column[Any]) -> bool:
    return isinstance(column.type, JSON)


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_text(value: Any) -> str:
    """``value`` as JSON text, by orjson (several times faster than json.dumps; compact, UTF-8): the
    same values as json.dumps writes. What orjson does not take (a date, a dataclass, an integer
    past 64 bits) goes to json.dumps, which fails as it always did."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def _bind(column: Column[Any], dialect: Any) -> Callable[[Any], Any] | None:
    """How a Python value of this column is sent (None: as it is). JSON: by the engine's own
    serializer if it has one, else :func:`json_text`."""
    if _is_json(column):
        dumps = dialect._json_serializer or json_text
        none_as_null = column.type.none_as_null
        return lambda v: None if v is None and none_as_null else dumps(v)
    if isinstance(column.type, TypeDecorator):
        return lambda v, t=column.type: t.process_bind_param(v, dialect)
    return None


async def _translated(conn: AsyncConnection, sql: str, run: Callable[[], Awaitable[T]]) -> T:
    """Run an asyncpg call; its error raised as SQLAlchemy would raise it."""
    try:
        return await run()
    except Exception as error:  # asyncpg's own exceptions, translated below
        dialect = conn.dialect
        raw = await conn.get_raw_connection()
        adapted = raw.dbapi_connection
        translated: Exception = error
        try:
            type(adapted)._handle_exception_no_connection(dialect.loaded_dbapi, error)
        except Exception as mapped:  # noqa: BLE001 - the dialect's translation of ``error``
            translated = mapped
        gone = bool(dialect.is_disconnect(translated, adapted, None))
        if gone:
            await conn.invalidate()
        raise sa_exc.DBAPIError.instance(sql, None, translated, dialect.loaded_dbapi.Error,
                                         connection_invalidated=gone, dialect=dialect) from error


# A column sent as one text: its values joined by a unit separator, NULL as a record separator,
# split by PostgreSQL (string_to_array) and cast there. asyncpg encodes an array element by element
# through abc isinstance checks (about 4 us a value, most of a batch write's CPU); a join is one call.
_SEP, _NULL = "\x1f", "\x1e"
_SPLIT = "((string_to_array(${i}::text, E'\\x1f', E'\\x1e'))[2:])::{type}[]"


def _packed(values: Sequence[Any]) -> str | None:
    """``values`` as one text, or None when one is not text PostgreSQL reads back as itself and
    cheaply (bytes, a timestamp: PostgreSQL parses one in text several times slower than asyncpg's
    binary form; a value holding a separator): those are sent as an array. A leading separator
    makes a lone empty string one element (the split drops the first)."""
    out = [""]
    nulls = 0
    for v in values:
        kind = type(v)
        if kind is str:
            out.append(v)
        elif v is None:
            out.append(_NULL)
            nulls += 1
        elif kind is date:
            out.append(v.isoformat())
        elif kind is int or kind is float:
            out.append(repr(v))
        elif kind is bool:
            out.append("true" if v else "false")
        else:
            return None
    text = _SEP.join(out)
    if text.count(_SEP) != len(values) or text.count(_NULL) != nulls:
        return None
    return text


@cache
def _unnest_sql(table: Table, columns: tuple[str, ...], dialect: Any, packed: tuple[bool, ...], first: int) -> str:
    cols = [table.c[c] for c in columns]
    names = ", ".join(f'"{c}"' for c in columns)
    arrays = ", ".join(_SPLIT.format(i=i, type=_pg_type(col, dialect)) if pack else f"${i}::{_pg_type(col, dialect)}[]"
                       for i, (col, pack) in enumerate(zip(cols, packed, strict=True), first))
    values = ", ".join(f'u."{c.name}"::{c.type.compile(dialect=dialect)}' if _is_json(c) else f'u."{c.name}"'
                       for c in cols)
    return f"SELECT {values} FROM unnest({arrays}) AS u({names})"


def unnest_sql(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]],
               first: int = 1) -> tuple[str, list[Any]]:
    """PostgreSQL: ``SELECT ... FROM unnest(...) AS u(...)`` giving ``rows`` as the table's column
    types (u's columns named as the rows' keys), and its arguments, numbered from ``$first``."""
    args = _columns(conn, table, tuple(rows[0]), rows)
    return _unnest_sql(table, tuple(rows[0]), conn.dialect, tuple(isinstance(a, str) for a in args), first), args


def _columns(conn: AsyncConnection, table: Table, columns: Sequence[str],
             rows: Sequence[dict[str, Any]]) -> list[Any]:
    """Each column's values, as one packed text where it can be (see :func:`_packed`), else a list."""
    out: list[Any] = []
    for name in columns:
        values = [row[name] for row in rows]
        bind = _bind(table.c[name], conn.dialect)
        values = values if bind is None else [bind(v) for v in values]
        packed = _packed(values)
        out.append(values if packed is None else packed)
    return out


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], *,
                      conflict: Sequence[str] = (), update: Sequence[str] | None = None,
                      unless_same: Sequence[str] | None = None, returning: str | None = None) -> list[Any]:
    """INSERT ``rows`` (dicts with the same keys: the columns written). ``conflict``: the unique
    columns of ON CONFLICT; with ``update`` the columns set from the new row (an upsert), without
    it DO NOTHING. ``unless_same``: a stored row whose values in these columns equal the new row's
    is left as it is (no write at all; e.g. its updated_at stays). ``returning``: one column whose
    values of the inserted rows are returned."""
    if not rows:
        return []
    if update is not None and not conflict:
        raise ValueError("an upsert needs its conflict columns")
    if not is_postgres(session):
        stmt = upsertable_insert(session, table)
        if conflict:
            where = (or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in unless_same))
                     if update and unless_same else None)
            stmt = (stmt.on_conflict_do_update(index_elements=list(conflict), where=where,
                                               set_={c: getattr(stmt.excluded, c) for c in update})
                    if update else stmt.on_conflict_do_nothing(index_elements=list(conflict)))
        if returning:
            return list((await session.scalars(stmt.values(list(rows)).returning(table.c[returning]))).all())
        await session.execute(stmt, list(rows))
        return []
    conn, driver = await _driver(session)
    sql, args = insert_sql(conn, table, rows, conflict=conflict, update=update, unless_same=unless_same,
                           returning=returning)
    if returning:
        records = await _translated(conn, sql, lambda: driver.fetch(sql, *args))
        return [r[0] for r in records]
    await _translated(conn, sql, lambda: driver.execute(sql, *args))
    return []


def insert_sql(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], *, conflict: Sequence[str] = (),
               update: Sequence[str] | None = None, unless_same: Sequence[str] | None = None,
               returning: str | None = None, first: int = 1, where: str = "") -> tuple[str, list[Any]]:
    """PostgreSQL: the INSERT of :func:`insert_rows` and its arguments, numbered from ``$first`` (to
    be one part of a larger statement, e.g. a data-modifying WITH; see :func:`fetch`). ``where``:
    a condition on the new rows (``u."column"``), e.g. `` WHERE u."id" IN (SELECT ...)``."""
    _, qualified = _qualified(conn, table)
    on_conflict = ""
    if conflict:
        target = ", ".join(f'"{c}"' for c in conflict)
        on_conflict = (f"ON CONFLICT ({target}) DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update)
                       if update else f"ON CONFLICT ({target}) DO NOTHING")
        if update and unless_same:
            on_conflict += " WHERE " + " OR ".join(_differs(qualified, c, _is_json(table.c[c])) for c in unless_same)
    select, args = unnest_sql(conn, table, rows, first)
    names = ", ".join(f'"{c}"' for c in rows[0])
    sql = f"INSERT INTO {qualified} ({names}) {select}{where} {on_conflict}"
    return sql + (f' RETURNING "{returning}"' if returning else ""), args


def _differs(qualified: str, column: str, is_json: bool) -> str:
    """SQL: the stored row's ``column`` differs from the new row's. JSON has no "=": by its text,
    and where the texts differ by its value (jsonb), so a row stored in another spacing (SQLAlchemy's
    json.dumps) with the same values is the same."""
    old, new = f'{qualified}."{column}"', f'EXCLUDED."{column}"'
    if not is_json:
        return f"{old} IS DISTINCT FROM {new}"
    return f"({old}::text IS DISTINCT FROM {new}::text AND {old}::jsonb IS DISTINCT FROM {new}::jsonb)"


def qualified_name(conn: AsyncConnection, table: Table) -> str:
    """The table's name in SQL text, in the connection's schema (its schema_translate_map)."""
    return _qualified(conn, table)[1]


async def connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, inside its transaction (PostgreSQL: asyncpg's begun)."""
    return (await _driver(session))[0]


async def fetch(session: AsyncSession, sql: str, args: Sequence[Any]) -> list[Any]:
    """PostgreSQL: run ``sql`` (asyncpg's ``$n`` parameters) in the session's transaction, prepared
    once per connection; its rows (asyncpg records), its errors as SQLAlchemy raises them."""
    conn, driver = await _driver(session)
    return await _translated(conn, sql, lambda: driver.fetch(sql, *args))  # type: ignore[no-any-return]


async def copy_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Plain INSERT of ``rows`` in their order; on PostgreSQL by COPY (no conflict handling)."""
    if not rows:
        return
    if not is_postgres(session):
        await session.execute(table.insert(), list(rows))
        return
    conn, driver = await _driver(session)
    schema, qualified = _qualified(conn, table)
    columns = list(rows[0])
    # column by column (a bind, e.g. JSON as text, applied to its column's values), then one tuple a row
    values = [[row[c] for row in rows] for c in columns]
    for i, column in enumerate(columns):
        bind = _bind(table.c[column], conn.dialect)
        if bind is not None:
            values[i] = [bind(v) for v in values[i]]
    records = list(zip(*values, strict=True))
    await _translated(conn, f"COPY {qualified}", lambda: driver.copy_records_to_table(
        table.name, schema_name=schema, columns=columns, records=records))
