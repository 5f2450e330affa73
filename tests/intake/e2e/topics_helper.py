"""Counting records on Kafka topics in intake's end-to-end tests."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer

from shared.kafka import topic_partitions
from shared.settings import Settings
from tests.conftest import read_topic


async def sizes(settings: Settings, names: list[str]) -> dict[str, int]:
    """The number of records on each topic (the sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        found = {}
        for name in names:
            partitions = await topic_partitions(settings.kafka, name)
            found[name] = sum((await consumer.end_offsets(partitions)).values()) if partitions else 0
        return found
    finally:
        await consumer.stop()


async def all_records(settings: Settings, topic: str, at_least: int, settle: float = 0.3) -> list[Any]:
    """Every record of ``topic`` once it has ``at_least`` and nothing more arrived for ``settle`` seconds."""
    await read_topic(settings.kafka.bootstrap_servers, topic, lambda rs: len(rs) >= at_least)
    await asyncio.sleep(settle)
    total = (await sizes(settings, [topic]))[topic]
    return await read_topic(settings.kafka.bootstrap_servers, topic, lambda rs: len(rs) >= total)
