"""Structured JSON logging that never logs personal data, and does bounded work whatever it is given.

Log lines carry ids and an action. A processor drops any key that could hold personal data
(names, addresses, phone numbers, bodies), cuts every value to ``MAX_FIELD_CHARS`` (with a marker
saying how long it was) and masks anything that looks like an email address or a phone number in
what remains, as a last line of defence. The patterns are linear in the length of the text: every
repetition is bounded, so no input makes a log line slow.

While Kafka is unreachable the Kafka client logs an error for every attempt; a filter turns those
into one ``kafka.unreachable`` line when the outage starts and one ``kafka.reachable`` line (with
how many errors it held back) when Kafka answers again: a message acknowledged, a readiness check
answered, or a consumer back in its group (``kafka_connection_state``).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from typing import Any

import structlog

PERSONAL_KEYS = frozenset(
    {"name", "email", "phone", "to", "address", "recipient", "body", "contacts", "personalisation",
     "forename", "surname", "postcode", "upn", "birth_date", "message", "text"}
)
MAX_FIELD_CHARS = 2000  # any longer value is cut (an id or a message from outside can be any length)
MAX_EXCEPTION_CHARS = 20_000  # a traceback is longer, and worth keeping
# Bounded repetitions (local part at most 64 characters, labels at most 63, as in RFC 5321), so each
# starting position costs a bounded number of steps: linear overall.
_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_PHONE = re.compile(r"(?<!\d)(?:\+?44\s?7\d{3}|07\d{3})\s?\d{3}\s?\d{3}(?!\d)")


def cut(value: str, limit: int = MAX_FIELD_CHARS) -> str:
    if len(value) <= limit:
        return value
    return f"{value[:limit]}…[cut: {len(value)} characters]"


def scrub(value: Any, limit: int = MAX_FIELD_CHARS) -> Any:
    if isinstance(value, str):
        return _PHONE.sub("[phone]", _EMAIL.sub("[email]", cut(value, limit)))
    return value


def redact_personal_data(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if key in PERSONAL_KEYS:
            event_dict[key] = "[redacted]"
        else:
            value = event_dict[key]
            if not isinstance(value, str | int | float | bool | type(None)):
                value = repr(value)  # lists, exceptions, objects: their text is scrubbed like any other
            event_dict[key] = scrub(value, MAX_EXCEPTION_CHARS if key == "exception" else MAX_FIELD_CHARS)
    return event_dict


class KafkaConnectionState:
    """Whether Kafka is reachable, as far as the logs go: a connection error of the Kafka client marks
    it down (said once, and again every ``repeat_after`` seconds while it lasts, with how many errors
    were held back), ``mark_up`` (a message acknowledged, a readiness check or a consumer back in its
    group) marks it up (said once). Errors within ``settle_seconds`` of coming back are the clients
    reconnecting, not a new outage: said only if Kafka is still down after that long."""

    def __init__(self, repeat_after: float = 300.0, settle_seconds: float = 15.0) -> None:
        self._lock = threading.Lock()
        self.repeat_after = repeat_after
        self.settle_seconds = settle_seconds
        self.reset()

    def reset(self) -> None:
        self.down = False
        self.suppressed = 0
        self._announced = False
        self._since = self._said_at = 0.0
        self._up_at = float("-inf")

    def failed(self, detail: str) -> None:
        """Record a connection error of the Kafka client (logged only when it starts or recalls an outage)."""
        now = time.monotonic()
        with self._lock:
            if not self.down:
                self.down, self._since, self.suppressed = True, now, 0
                self._announced = now - self._up_at >= self.settle_seconds
                # a flap right after coming back: said once it has lasted settle_seconds
                self._said_at = now if self._announced else now - self.repeat_after + self.settle_seconds
                if not self._announced:
                    self.suppressed = 1
                    return
                held, still = 0, False
            elif now - self._said_at < self.repeat_after:
                self.suppressed += 1
                return
            else:
                held, still, self._said_at, self.suppressed, self._announced = self.suppressed, True, now, 0, True
        get_logger("shared.kafka").warning(
            "kafka.unreachable", detail=detail, still_down_seconds=round(now - self._since, 1) if still else None,
            suppressed=held or None, action="retrying; said again when Kafka answers")

    def mark_up(self) -> None:
        now = time.monotonic()
        with self._lock:
            if not self.down:
                return
            held, seconds, announced = self.suppressed, now - self._since, self._announced
            self.down, self.suppressed, self._up_at = False, 0, now
        if announced:
            get_logger("shared.kafka").warning("kafka.reachable", suppressed=held, down_seconds=round(seconds, 1))


kafka_connection_state = KafkaConnectionState()


# What the Kafka client says, at each attempt, while it cannot reach a broker.
_KAFKA_DOWN = re.compile(r"Unable (?:to )?(?:connect|update metadata|request metadata)|Connect call failed|"
                         r"KafkaConnectionError|NodeNotReady|RequestTimedOut|Failed fetch|coordinator dead|"
                         r"Coordinator (?:Request|Not Available)|Could not send|Cannot send|Connection|timed out|"
                         r"coordinator \(node \d+\) is either not started or not valid",
                         re.IGNORECASE)
# What the Kafka client says (at INFO) when a consumer is back in its group: Kafka answers again.
_KAFKA_BACK = re.compile(r"Discovered coordinator|Joined group|Successfully synced group|Setting newly assigned")


class _KafkaClientLogs(logging.Filter):
    """The Kafka client's connection errors become the outage's state (said once), its consumers
    rejoining their group end the outage; its other warnings pass, its INFO lines never do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        text = cut(record.getMessage(), 500)
        if record.levelno >= logging.WARNING:
            if not _KAFKA_DOWN.search(text):
                return True  # another problem (a rebalance, a bad record): said as it is
            kafka_connection_state.failed(text)
        elif kafka_connection_state.down and _KAFKA_BACK.search(text):
            kafka_connection_state.mark_up()
        return False


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (test runners and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    """Configure structlog and the stdlib root logger (library logs go through the same pipe)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_personal_data,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(_CurrentStderr())  # type: ignore[arg-type]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *shared[1:], renderer],
            foreign_pre_chain=[])
    )
    handler.addFilter(_KafkaClientLogs())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("faststream", "apscheduler", "aiosqlite", "httpx", "mail.log", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.getLogger("aiokafka").setLevel(logging.INFO)  # read by the filter above, never printed


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
