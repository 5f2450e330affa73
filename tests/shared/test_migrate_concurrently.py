"""Replicas of a service starting at the same moment both migrate its schema: neither may fail
(found by the two-replica fault rehearsal: a concurrent CREATE SCHEMA IF NOT EXISTS raised a unique
violation and the second replica exited)."""

from __future__ import annotations

import asyncio

import pytest

from services.deadlines.bootstrap import MIGRATIONS, SERVICE
from shared.db import create_engine_for, migrate
from shared.settings import Settings

pytestmark = pytest.mark.infra


async def test_replicas_migrating_the_same_schema_at_once_both_succeed(isolated: Settings) -> None:
    engines = [create_engine_for(isolated, SERVICE) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(e, SERVICE, MIGRATIONS, isolated.schema_for(SERVICE))
                                         for e in engines), return_exceptions=True)
    finally:
        for engine in engines:
            await engine.dispose()
    assert [r for r in results if isinstance(r, BaseException)] == []
