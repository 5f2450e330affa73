"""Delivery policy, pure: statuses and their transitions, retry backoff, quiet hours, rate limits, numbers.

Nothing here sleeps, reads the wall clock behind the caller's back or touches the network: every
function takes "now" (or a clock) and answers with an instant ("try again at t", "wait until t"),
so the outbox worker can store the answer in a row and tests can drive time by hand.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

LONDON = ZoneInfo("Europe/London")

# --------------------------------------------------------------------------------------------
# Statuses
# --------------------------------------------------------------------------------------------


class NotificationStatus(StrEnum):
    """The closed set of notification statuses (the same strings as ``ehc.notification-events``).

    pending            created, not yet tried
    deferred           waiting for a later instant: quiet hours, a rate limit or a retry backoff
    sending            an attempt is in flight (the row is claimed)
    sent               the provider accepted it; no delivery receipt (yet)
    delivered          the provider says it reached the recipient (or the file sink wrote it)
    temporary-failure  not delivered for now (phone off, inbox full, a retryable send error); it may
                       be sent again
    permanent-failure  the provider could not deliver it (wrong number or address)
    technical-failure  the provider failed internally; it may be sent again
    failed             we gave up: a permanent error at send time or the last retry failed
    historical         never sent: what it would tell of was first seen well after it happened
                       (a backfill, an import, a service down for days); recorded so it is visible
    """

    PENDING = "pending"
    DEFERRED = "deferred"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    TEMPORARY_FAILURE = "temporary-failure"
    PERMANENT_FAILURE = "permanent-failure"
    TECHNICAL_FAILURE = "technical-failure"
    FAILED = "failed"
    HISTORICAL = "historical"


S = NotificationStatus

#: For each status, the statuses it may be entered from (as alphagov/notifications-api guards its
#: updates). ``pending`` is only ever a starting status.
ALLOWED_FROM: Mapping[NotificationStatus, frozenset[NotificationStatus]] = {
    S.PENDING: frozenset(),
    # re-deferring is allowed: a retry that lands in quiet hours is deferred again
    S.DEFERRED: frozenset({S.PENDING, S.DEFERRED, S.SENDING, S.TEMPORARY_FAILURE, S.TECHNICAL_FAILURE}),
    # Notify: after a temporary or technical failure "you can try to send the message again"
    S.SENDING: frozenset({S.PENDING, S.DEFERRED, S.TEMPORARY_FAILURE, S.TECHNICAL_FAILURE}),
    # a provider status poll may say "sending" again: sent -> sent is a no-op
    S.SENT: frozenset({S.SENDING, S.SENT}),
    # a receipt may overtake the commit of "sent", hence sending -> delivered; receipts repeat
    S.DELIVERED: frozenset({S.SENDING, S.SENT, S.DELIVERED}),
    S.TEMPORARY_FAILURE: frozenset({S.SENDING, S.SENT, S.TEMPORARY_FAILURE}),
    S.PERMANENT_FAILURE: frozenset({S.SENDING, S.SENT, S.PERMANENT_FAILURE}),
    S.TECHNICAL_FAILURE: frozenset({S.SENDING, S.SENT, S.TECHNICAL_FAILURE}),
    S.FAILED: frozenset({S.PENDING, S.DEFERRED, S.SENDING, S.TEMPORARY_FAILURE, S.TECHNICAL_FAILURE}),
    # decided when the notification is planned, never later
    S.HISTORICAL: frozenset({S.PENDING}),
}

#: Statuses nothing leaves: the notification is settled.
FINAL_STATUSES: frozenset[NotificationStatus] = frozenset({S.DELIVERED, S.PERMANENT_FAILURE, S.FAILED,
                                                           S.HISTORICAL})

#: Statuses after which someone should be told that the message did not arrive.
FAILURE_STATUSES: frozenset[NotificationStatus] = frozenset({S.PERMANENT_FAILURE, S.FAILED})


class InvalidStatusTransition(ValueError):
    def __init__(self, current: NotificationStatus, new: NotificationStatus) -> None:
        allowed = ", ".join(sorted(ALLOWED_FROM[new])) or "nothing (a starting status)"
        super().__init__(f"a notification cannot go from {current!s} to {new!s}; {new!s} may follow: {allowed}")
        self.current = current
        self.new = new


def can_transition(current: NotificationStatus | str, new: NotificationStatus | str) -> bool:
    return NotificationStatus(current) in ALLOWED_FROM[NotificationStatus(new)]


def transition(current: NotificationStatus | str, new: NotificationStatus | str) -> NotificationStatus:
    """Return ``new`` if a notification in ``current`` may move to it, else raise InvalidStatusTransition.

    Unknown status strings raise ValueError: the set is closed.
    """
    cur, nxt = NotificationStatus(current), NotificationStatus(new)
    if cur not in ALLOWED_FROM[nxt]:
        raise InvalidStatusTransition(cur, nxt)
    return nxt


def is_final(status: NotificationStatus | str) -> bool:
    return NotificationStatus(status) in FINAL_STATUSES


# --------------------------------------------------------------------------------------------
# Nothing stale
# --------------------------------------------------------------------------------------------

HISTORICAL_REASON = "first seen after the event: recorded, not sent"


def milestone_day(event_type: str, data: Any) -> date | None:
    """The day the thing a deadline event tells of happened: the trigger (opened), the completion
    (met), the first day late (breached). ``data`` is a deadline event's data or a projection row
    (``opened_on`` stands for ``trigger_date``)."""
    if event_type == "deadline.met":
        return getattr(data, "completed_on", None) or _trigger_day(data)
    if event_type == "deadline.breached":
        return data.due_on + timedelta(days=1)
    if event_type == "deadline.opened":
        return _trigger_day(data)
    return None


def _trigger_day(data: Any) -> date | None:
    return getattr(data, "trigger_date", None) or getattr(data, "opened_on", None)


def is_historical(event_type: str, data: Any, now: datetime, grace_days: int = 2,
                  event_time: datetime | None = None) -> bool:
    """True when a deadline event is about the past: no one is told, the notification is recorded as
    ``historical``. The one test for every path (deadline events, contacts that arrive later, ...).

    * what happened (``milestone_day``) is more than ``grace_days`` before today (Europe/London): a
      backfilled case, an import, a service that was down for days;
    * or the message would name a date to act by that has already gone: a deadline opened, or a
      reminder of it, or its date moved, after its due date.

    A moved date (``deadline.changed``) happened when the change was published (``event_time``), not
    when the deadline started: a deadline opened weeks ago may move today.
    """
    _require_aware(now)
    today = now.astimezone(LONDON).date()
    if event_type == "deadline.changed":  # the change is the news, not the deadline's start
        day = event_time.astimezone(LONDON).date() if event_time is not None else None
    else:
        day = milestone_day(event_type, data)
    if day is not None and day < today - timedelta(days=grace_days):
        return True
    return event_type in ("deadline.opened", "deadline.due_soon", "deadline.changed") and data.due_on < today


# --------------------------------------------------------------------------------------------
# Retry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, for RetryableSendError only.

    The n-th retry waits ``min(cap, base * factor**(n-1))`` seconds, of which the upper half is
    random ("equal jitter": never less than half the nominal wait, so replicas spread out without
    hammering the provider). A provider's Retry-After is honoured when longer, still within the cap.
    After ``max_attempts`` attempts in all there is no next attempt: the notification has failed.
    """

    base_seconds: float = 10.0
    factor: float = 2.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.factor < 1 or self.cap_seconds < self.base_seconds:
            raise ValueError("RetryPolicy needs base > 0, factor >= 1 and cap >= base")
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy needs max_attempts >= 1")

    def nominal_delay(self, attempts_made: int) -> float:
        """The wait before the next attempt, without jitter (attempts_made >= 1)."""
        if attempts_made < 1:
            raise ValueError("attempts_made counts the attempts already made: at least 1")
        # exponent bounded so a large attempt count cannot overflow a float
        exponent = min(attempts_made - 1, 64)
        return min(self.cap_seconds, self.base_seconds * self.factor**exponent)

    def delay(
        self, attempts_made: int, retry_after: float | None = None, rand: Callable[[], float] = random.random
    ) -> float:
        nominal = self.nominal_delay(attempts_made)
        jittered = nominal / 2 + rand() * nominal / 2
        if retry_after is not None and retry_after > jittered:
            jittered = retry_after
        return min(self.cap_seconds, jittered)

    def next_attempt_at(
        self,
        attempts_made: int,
        error: BaseException,
        now: datetime,
        rand: Callable[[], float] = random.random,
    ) -> datetime | None:
        """When to try again after ``attempts_made`` attempts ended in ``error``; None: give up.

        Only an error that says it is retryable (``RetryableSendError``: network error, timeout, 5xx,
        429, SMTP 4xx) is retried; its ``retry_after`` (seconds) is honoured up to the cap. Any other
        exception, a PermanentSendError included, gives None. (Duck-typed on the ``retryable``
        attribute so the domain does not import the adapters.)
        """
        _require_aware(now)
        if getattr(error, "retryable", False) is not True or attempts_made >= self.max_attempts:
            return None
        retry_after = getattr(error, "retry_after", None)
        return now + timedelta(seconds=self.delay(attempts_made, retry_after, rand))


# --------------------------------------------------------------------------------------------
# Quiet hours
# --------------------------------------------------------------------------------------------


def _parse_hhmm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:  # also catches a wrong number of parts
        raise ValueError(f"not a time of day in HH:MM form: {value!r}") from exc


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _local_instant(day: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The instant of wall-clock time ``at`` on ``day``'s date in ``zone``; a time in a spring-forward
    gap moves to just after the gap (the UTC round trip normalises it)."""
    naive = datetime.combine(day.date(), at)
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def quiet_hours_defer(
    now: datetime, start: str = "20:00", end: str = "08:00", tz: str = "Europe/London"
) -> datetime | None:
    """If ``now`` falls inside quiet hours, the instant they end (aware, in ``tz``); else None.

    Quiet hours run from ``start`` (inclusive) to ``end`` (exclusive), in local wall-clock time, and
    may span midnight. Local time follows the zone's rules, so 08:00 is 08:00 GMT in winter and
    08:00 BST in summer, also across the night the clocks change. ``start == end`` means none.
    """
    _require_aware(now)
    zone = ZoneInfo(tz)
    start_t, end_t = _parse_hhmm(start), _parse_hhmm(end)
    if start_t == end_t:
        return None
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if start_t < end_t:  # a window inside one day, e.g. 12:00-14:00
        inside = start_t <= wall < end_t
        ends_on = local
    else:  # spans midnight, e.g. 20:00-08:00
        inside = wall >= start_t or wall < end_t
        ends_on = local + timedelta(days=1) if wall >= start_t else local
    if not inside:
        return None
    resume = _local_instant(ends_on, end_t, zone)
    return resume if resume > now else None


# --------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class TokenBucket:
    """A token bucket: ``capacity`` tokens, refilled at ``rate`` tokens per second. Pure state."""

    capacity: float
    rate: float
    tokens: float
    updated: float  # seconds since the epoch of the last refill

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def available_at(self, now: float, cost: float = 1.0) -> float:
        """The earliest instant (epoch seconds) at which ``cost`` tokens are there; ``now`` if already."""
        self.refill(now)
        if self.tokens >= cost:
            return now
        return now + (cost - self.tokens) / self.rate

    def take(self, now: float, cost: float = 1.0) -> None:
        self.refill(now)
        self.tokens -= cost

    def is_full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.capacity


@dataclass
class RateLimiter:
    """Client-side limits, so we slow down before the provider says 429.

    * a global bucket shaped like GOV.UK Notify's own per-key limit (3,000 requests a minute,
      replenished at 50 a second, with a burst of up to 1,000);
    * a bucket per phone number: by default 3 texts per number per hour (burst 3, then one every
      20 minutes), so a family is never flooded, whatever goes wrong upstream.

    ``try_acquire`` never sleeps: it takes the tokens and returns None, or takes nothing and returns
    the instant to come back. One limiter per process: with several replicas each has its own
    buckets (Notify's 429 remains the backstop, and retries honour it).
    """

    per_minute: int = 3000
    burst: int = 1000
    per_number_per_hour: int = 3
    clock: Callable[[], datetime] = _utcnow
    max_tracked_numbers: int = 10_000
    _global: TokenBucket = field(init=False, repr=False)
    _numbers: dict[str, TokenBucket] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.burst < 1 or self.per_number_per_hour < 1:
            raise ValueError("rate limits must be at least 1")
        now = self._now()
        self._global = TokenBucket(self.burst, self.per_minute / 60.0, float(self.burst), now)

    def _now(self) -> float:
        instant = self.clock()
        _require_aware(instant)
        return instant.timestamp()

    @staticmethod
    def _key(number: str) -> str:
        # numbers are personal data: keep only a digest of them in memory
        return hashlib.sha256(number.encode()).hexdigest()

    def _number_bucket(self, number: str, now: float) -> TokenBucket:
        key = self._key(number)
        bucket = self._numbers.get(key)
        if bucket is None:
            if len(self._numbers) >= self.max_tracked_numbers:
                self._forget_full_buckets(now)
            cap = float(self.per_number_per_hour)
            bucket = TokenBucket(cap, cap / 3600.0, cap, now)
            self._numbers[key] = bucket
        return bucket

    def _forget_full_buckets(self, now: float) -> None:
        # a full bucket carries no information: dropping it changes no answer
        for key in [k for k, b in self._numbers.items() if b.is_full(now)]:
            del self._numbers[key]

    def try_acquire(self, number: str | None = None) -> datetime | None:
        """Take a token for one message (and one for ``number``, for a text); None means "send now".

        Otherwise nothing is taken and the answer is the instant (aware, UTC) to ask again.
        """
        now = self._now()
        ready = self._global.available_at(now)
        bucket = self._number_bucket(number, now) if number is not None else None
        if bucket is not None:
            ready = max(ready, bucket.available_at(now))
        if ready > now:
            return datetime.fromtimestamp(ready, UTC)
        self._global.take(now)
        if bucket is not None:
            bucket.take(now)
        return None


# --------------------------------------------------------------------------------------------
# Phone numbers
# --------------------------------------------------------------------------------------------


class InvalidPhoneNumber(ValueError):
    """A number that cannot receive our texts; ``reason`` is plain English and holds no digits."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Ofcom reserves 07700 900000-900999 for drama and tests; libphonenumber calls them invalid, GOV.UK
# Notify accepts them as mobiles. Accepting them lets demo data and tests look like real numbers.
_OFCOM_DRAMA_MOBILES = range(447700900000, 447700901000)
_UK_MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE})


def normalise_uk_mobile(raw: str) -> str:
    """A UK mobile number in E.164 (``+447900900123``), or InvalidPhoneNumber with a clear reason.

    Accepts the usual ways of writing one (``07900 900123``, ``+44 (0)7900 900123``, ``0044...``).
    Mobiles of the Channel Islands and the Isle of Man (+44 7...) count as UK mobiles, as on Notify.
    Landlines, freephone, personal (070) numbers and pagers are refused: they cannot take texts.
    """
    text = raw.strip().replace("(0)", "")
    if not any(ch.isdigit() for ch in text):
        raise InvalidPhoneNumber("the phone number has no digits")
    try:
        parsed = phonenumbers.parse(text, "GB")
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber("this is not a phone number") from exc
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if parsed.country_code != 44:
        raise InvalidPhoneNumber("this is not a UK number; texts go to UK mobile numbers only")
    if int(e164[1:]) in _OFCOM_DRAMA_MOBILES:
        return e164
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("this is not a valid UK phone number (wrong length or unknown prefix)")
    kind = phonenumbers.number_type(parsed)
    if kind in _UK_MOBILE_TYPES:
        return e164
    if kind == phonenumbers.PhoneNumberType.FIXED_LINE:
        raise InvalidPhoneNumber("this is a landline number; it cannot receive text messages")
    raise InvalidPhoneNumber("this is not a UK mobile number; it cannot receive text messages")


def is_quiet_hours_channel(recipient_kind: str, channel_kind: str) -> bool:
    """Quiet hours apply to texts to families only (staff alerts and emails go at any hour)."""
    return recipient_kind == "family" and channel_kind == "sms"


__all__ = [
    "ALLOWED_FROM",
    "FAILURE_STATUSES",
    "FINAL_STATUSES",
    "HISTORICAL_REASON",
    "InvalidPhoneNumber",
    "InvalidStatusTransition",
    "NotificationStatus",
    "RateLimiter",
    "RetryPolicy",
    "TokenBucket",
    "can_transition",
    "is_final",
    "is_historical",
    "is_quiet_hours_channel",
    "milestone_day",
    "normalise_uk_mobile",
    "quiet_hours_defer",
    "transition",
]
