"""Kafka topic names (DESIGN §2). The only place they are spelled out.

Every topic is keyed by ``case_id`` so that one case's events stay in order on one partition
and replicas of a service split the partitions within one consumer group.
"""

from __future__ import annotations

from dataclasses import dataclass

CASE_EVENTS = "ehc.case-events"
DEADLINE_EVENTS = "ehc.deadline-events"
NOTIFICATION_EVENTS = "ehc.notification-events"
CONTACTS = "ehc.contacts"
INTAKE_DEAD_LETTER = "ehc.intake.dead-letter"
# A council's own case-management topic, mapped by intake; the name is configuration.
INTAKE_CANONICAL = "ehc.intake.canonical"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None  # None: broker default; -1: keep forever

    def config(self) -> dict[str, str]:
        cfg: dict[str, str] = {}
        if self.compacted:
            cfg["cleanup.policy"] = "compact"
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


def topic_specs(prefix: str = "", partitions: int = 6) -> list[TopicSpec]:
    """The topics of DESIGN §2. ``prefix`` isolates test runs on one broker."""
    return [
        # case events are the system of record for the deadlines service's rebuild: keep forever
        TopicSpec(prefix + CASE_EVENTS, partitions, retention_ms=-1),
        TopicSpec(prefix + DEADLINE_EVENTS, partitions),
        TopicSpec(prefix + NOTIFICATION_EVENTS, partitions),
        TopicSpec(prefix + CONTACTS, partitions, compacted=True),
        TopicSpec(prefix + INTAKE_DEAD_LETTER, partitions, retention_ms=-1),
        TopicSpec(prefix + INTAKE_CANONICAL, partitions),
    ]


ALL_TOPICS = [CASE_EVENTS, DEADLINE_EVENTS, NOTIFICATION_EVENTS, CONTACTS, INTAKE_DEAD_LETTER, INTAKE_CANONICAL]
