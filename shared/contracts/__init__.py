"""The project's message contracts (DESIGN §2): CloudEvents 1.0 envelopes with typed data."""

from shared.contracts.case_events import (
    CASE_EVENT_TYPES,
    EVENT_MODELS,
    CaseEvent,
    CaseEventEnvelope,
    build_case_event,
    parse_case_event,
)
from shared.contracts.contacts import Contact, ContactsData, ContactsUpdated, parse_contacts
from shared.contracts.dead_letter import IntakeRejected, ParkedData, RecordParked, RejectedData
from shared.contracts.deadline_events import (
    DEADLINE_EVENT_TYPES,
    DeadlineData,
    DeadlineEvent,
    parse_deadline_event,
)
from shared.contracts.envelope import Envelope, EventData, utcnow
from shared.contracts.errors import describe_validation_error
from shared.contracts.notification_events import NotificationData, NotificationEvent

__all__ = [
    "CASE_EVENT_TYPES", "DEADLINE_EVENT_TYPES", "EVENT_MODELS", "CaseEvent", "CaseEventEnvelope", "Contact",
    "ContactsData", "ContactsUpdated", "DeadlineData", "DeadlineEvent", "Envelope", "EventData",
    "IntakeRejected", "NotificationData", "NotificationEvent", "ParkedData", "RecordParked", "RejectedData",
    "build_case_event",
    "describe_validation_error", "parse_case_event", "parse_contacts", "parse_deadline_event", "utcnow",
]
