"""The deadlines service's start-up objects are left out of garbage collection (issue 12: p99
under 250 ms at 200 events/s). Every full collection otherwise walked the modules, rule set, schemas
and mappers loaded at start-up, pausing the consumer for 200-300 ms on this machine."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

import pytest

from services.deadlines.bootstrap import bootstrap
from shared.settings import Settings
from tests.deadlines.e2e.test_deadlines_service import MovableClock

pytestmark = pytest.mark.infra


async def test_start_up_objects_are_frozen_out_of_garbage_collection(isolated: Settings) -> None:
    gc.unfreeze()
    app = bootstrap(isolated, clock=MovableClock(datetime(2026, 3, 20, 12, tzinfo=UTC)))
    try:
        await app.start(consume=False, schedule=False)
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()  # still collected: what the service allocates from now on
    finally:
        await app.stop()
        gc.unfreeze()
