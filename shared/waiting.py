"""Waiting for a wake-up, with a time limit, in a loop that must stop when its task is cancelled.

Python 3.11's ``asyncio.wait_for`` returns the awaited result when a cancellation arrives in the
same step as that result (fixed in 3.12): the cancelled task runs on, and whoever waits for it to
end waits forever. ``asyncio.timeout`` counts cancellations and lets an outside one through."""

from __future__ import annotations

import asyncio


async def wait_for_wakeup(wakeup: asyncio.Event, seconds: float) -> bool:
    """Wait until ``wakeup`` is set or ``seconds`` have passed; True when it was set."""
    try:
        async with asyncio.timeout(seconds):
            await wakeup.wait()
    except TimeoutError:
        return False
    return True
