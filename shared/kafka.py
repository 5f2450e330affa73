"""Kafka set-up shared by the services: FastStream broker, aiokafka producer, security options.

A managed Kafka (SASL_SSL, TLS client certificates) is configured through
:class:`shared.settings.KafkaSettings`; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.settings import KafkaSettings
from shared.topics import TopicSpec, topic_specs


def _ssl_context(cfg: KafkaSettings) -> ssl.SSLContext | None:
    if cfg.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return create_ssl_context(
        cafile=str(cfg.ssl_cafile) if cfg.ssl_cafile else None,
        certfile=str(cfg.ssl_certfile) if cfg.ssl_certfile else None,
        keyfile=str(cfg.ssl_keyfile) if cfg.ssl_keyfile else None,
    )


def aiokafka_security(cfg: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients."""
    kwargs: dict[str, Any] = {"security_protocol": cfg.security_protocol}
    context = _ssl_context(cfg)
    if context is not None:
        kwargs["ssl_context"] = context
    if cfg.security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = cfg.sasl_mechanism
        kwargs["sasl_plain_username"] = cfg.sasl_username
        kwargs["sasl_plain_password"] = cfg.sasl_password.get_secret_value() if cfg.sasl_password else None
    return kwargs


def faststream_security(cfg: KafkaSettings) -> BaseSecurity | None:
    context = _ssl_context(cfg)
    if not cfg.security_protocol.startswith("SASL"):
        return BaseSecurity(ssl_context=context, use_ssl=True) if context else None
    password = cfg.sasl_password.get_secret_value() if cfg.sasl_password else ""
    cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[cfg.sasl_mechanism]
    return cls(username=cfg.sasl_username or "", password=password, ssl_context=context,
               use_ssl=cfg.security_protocol == "SASL_SSL")


def build_broker(cfg: KafkaSettings, client_id: str) -> KafkaBroker:
    """A FastStream broker for subscribers; it also publishes with acks=all."""
    return KafkaBroker(
        cfg.bootstrap_servers,
        client_id=f"{cfg.client_id}-{client_id}",
        security=faststream_security(cfg),
        acks="all",
        enable_idempotence=True,
        logger=logging.getLogger("faststream"),  # WARNING and above: a failing handler is visible
    )


def build_producer(cfg: KafkaSettings, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer with acks=all: a send's future resolves once the broker has it."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": cfg.bootstrap_servers,
        "client_id": f"{cfg.client_id}-{client_id}",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30000,
        **aiokafka_security(cfg),
    }
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)


async def ensure_topics(cfg: KafkaSettings, specs: Iterable[TopicSpec] | None = None,
                        timeout_s: float = 30.0) -> list[str]:
    """Create the topics that are missing (partitions and configs from ``shared.topics``) and wait
    until every partition has a leader, so producing right after works. Returns the names created.
    Idempotent: an existing topic, or one another client creates meanwhile, is left as it is."""
    specs = list(specs) if specs is not None else topic_specs(cfg.topic_prefix, cfg.partitions)
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers, request_timeout_ms=int(timeout_s * 1000),
                                **aiokafka_security(cfg))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        if missing:
            resp = await admin.create_topics(
                [NewTopic(s.name, s.partitions, cfg.replication_factor, topic_configs=s.config()) for s in missing],
                timeout_ms=int(timeout_s * 1000),
            )
            errors = []
            for topic, code, *message in resp.topic_errors:
                if code == 0:
                    created.append(topic)
                elif code != TopicAlreadyExistsError.errno:
                    errors.append(f"{topic}: error {code} {message[0] if message else ''}".strip())
            if errors:
                raise RuntimeError("could not create Kafka topics: " + "; ".join(errors))
        await _wait_for_leaders(admin, [s.name for s in missing], timeout_s)
        return created
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while names:
        described = await admin.describe_topics(names)
        names = [t["topic"] for t in described
                 if t["error_code"] != 0 or not t["partitions"] or any(p["leader"] < 0 for p in t["partitions"])]
        if names and time.monotonic() > deadline:
            raise RuntimeError(f"Kafka topics without partition leaders after {within_s:.0f} s: {names}")
        if names:
            await asyncio.sleep(0.2)


async def topic_partitions(cfg: KafkaSettings, topic: str) -> list[TopicPartition]:
    """The partitions of a topic, from the cluster's metadata (empty if the topic does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers, **aiokafka_security(cfg))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"]) for t in described if t["error_code"] == 0
            for p in t["partitions"]]


async def recent_event_ids(cfg: KafkaSettings, topic: str, per_partition: int) -> set[str]:
    """The CloudEvents ids of the last ``per_partition`` records of every partition of ``topic``.

    Used once at start-up by the outbox relay: rows published just before a crash, but not yet
    marked, are found here and marked instead of being published a second time."""
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                **aiokafka_security(cfg))
    await consumer.start()
    ids: set[str] = set()
    try:
        tps = await topic_partitions(cfg, topic)
        if not tps:
            return ids
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        remaining = {}
        for tp in tps:
            start = max(begins[tp], ends[tp] - per_partition)
            if ends[tp] > start:
                consumer.seek(tp, start)
                remaining[tp] = ends[tp]
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    event_id = _event_id(record.value)
                    if event_id:
                        ids.add(event_id)
                    if record.offset + 1 >= remaining.get(tp, 0):
                        remaining.pop(tp, None)
            if not batch:
                for tp in list(remaining):  # compacted or transactional gaps: trust the position
                    if await consumer.position(tp) >= remaining[tp]:
                        remaining.pop(tp)
        return ids
    finally:
        await consumer.stop()


def _event_id(value: bytes | None) -> str | None:
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed.get("id") if isinstance(parsed, dict) else None


async def consumer_lag(cfg: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    """Messages not yet committed by ``group``, per partition of ``topic``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers, **aiokafka_security(cfg))
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, **aiokafka_security(cfg))
    try:  # started inside: a broker that is down leaves nothing open behind
        await admin.start()
        await consumer.start()
        committed = await admin.list_consumer_group_offsets(group)
        tps = await topic_partitions(cfg, topic)
        ends = await consumer.end_offsets(tps) if tps else {}
        return {tp.partition: max(0, ends[tp] - (committed[tp].offset if tp in committed else 0)) for tp in tps}
    finally:
        await consumer.stop()
        await admin.close()
