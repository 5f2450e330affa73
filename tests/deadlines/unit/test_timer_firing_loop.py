"""The scheduler's firing loop: the outbox of one batch is published while the next batch fires, and
every batch's publishing has finished when the loop returns."""

from __future__ import annotations

import asyncio

from services.deadlines.entrypoints.scheduler import fire_all_due


class Batches:
    """Three batches of due timers; the second can only fire while the first is being published."""

    def __init__(self) -> None:
        self.left = [5, 4, 3]
        self.first_publishing = asyncio.Event()
        self.second_fired = asyncio.Event()

    async def fire_due_timers(self, limit: int) -> int:
        if len(self.left) == 2:  # the second batch
            await asyncio.wait_for(self.first_publishing.wait(), 5)
            self.second_fired.set()
        return self.left.pop(0) if self.left else 0

    async def has_due_timers(self) -> bool:
        return bool(self.left)


async def test_publishing_overlaps_the_next_batch_and_ends_before_the_loop() -> None:
    batches = Batches()
    published: list[int] = []

    async def after_batch() -> None:
        if not published:
            batches.first_publishing.set()
            await asyncio.wait_for(batches.second_fired.wait(), 5)  # waiting for the batch after it
        await asyncio.sleep(0)
        published.append(len(published) + 1)

    assert await fire_all_due(batches, after_batch) == 12  # type: ignore[arg-type]
    assert published == [1, 2, 3]


async def test_a_failing_batch_still_lets_the_publishing_of_the_one_before_finish() -> None:
    published: list[str] = []

    class FailsSecond(Batches):
        async def fire_due_timers(self, limit: int) -> int:
            if len(self.left) == 2:
                raise ConnectionError("database gone")
            return self.left.pop(0)

    async def after_batch() -> None:
        await asyncio.sleep(0)
        published.append("batch")

    try:
        await fire_all_due(FailsSecond(), after_batch)  # type: ignore[arg-type]
    except ConnectionError:
        pass
    else:
        raise AssertionError("the failure is the tick's to log")
    assert published == ["batch"]
