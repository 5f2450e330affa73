"""Waiting for a wake-up with a time limit never swallows a cancellation (shared.waiting).

Python 3.11's asyncio.wait_for returns the awaited result when a cancellation arrives in the same
step as that result, and the cancelled task runs on: the outbox relay's and the notifier sender's
idle waits did so, and a service's stop then waited for them forever."""

from __future__ import annotations

import asyncio

from shared.waiting import wait_for_wakeup


async def test_a_wake_up_and_a_cancellation_in_the_same_step_cancel() -> None:
    wakeup = asyncio.Event()
    waiting = asyncio.create_task(wait_for_wakeup(wakeup, 600.0))
    await asyncio.sleep(0)  # the task is waiting
    wakeup.set()
    waiting.cancel()
    done, _ = await asyncio.wait({waiting}, timeout=5)
    assert waiting in done and waiting.cancelled()


async def test_it_says_whether_it_was_woken() -> None:
    wakeup = asyncio.Event()
    assert await wait_for_wakeup(wakeup, 0.01) is False
    wakeup.set()
    assert await wait_for_wakeup(wakeup, 600.0) is True
