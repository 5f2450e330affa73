"""Delivery policy: statuses and transitions, retry backoff, quiet hours, rate limits, phone numbers."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.notifier.adapters.channels import PermanentSendError, RetryableSendError
from services.notifier.domain.policy import (
    ALLOWED_FROM,
    FINAL_STATUSES,
    InvalidPhoneNumber,
    InvalidStatusTransition,
    NotificationStatus,
    RateLimiter,
    RetryPolicy,
    can_transition,
    is_final,
    is_quiet_hours_channel,
    normalise_uk_mobile,
    quiet_hours_defer,
    transition,
)
from shared.contracts import notification_events

LONDON = ZoneInfo("Europe/London")
S = NotificationStatus
statuses = st.sampled_from(list(NotificationStatus))


# --- statuses ------------------------------------------------------------------------------------


def test_status_values_are_the_audit_contracts_closed_set() -> None:
    assert {s.value for s in NotificationStatus} == set(typing.get_args(notification_events.NotificationStatus))


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.PENDING, S.SENDING),
        (S.PENDING, S.DEFERRED),
        (S.DEFERRED, S.SENDING),
        (S.SENDING, S.SENT),
        (S.SENDING, S.DELIVERED),  # file sink; or a receipt that overtook "sent"
        (S.SENT, S.DELIVERED),
        (S.SENT, S.PERMANENT_FAILURE),
        (S.SENDING, S.TEMPORARY_FAILURE),
        (S.TEMPORARY_FAILURE, S.SENDING),  # Notify: "you can try to send the message again"
        (S.TECHNICAL_FAILURE, S.DEFERRED),
        (S.SENDING, S.FAILED),
        (S.DELIVERED, S.DELIVERED),  # a receipt delivered twice
    ],
)
def test_allowed_transitions(current: NotificationStatus, new: NotificationStatus) -> None:
    assert transition(current, new) is new
    assert transition(current.value, new.value) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.DELIVERED, S.SENDING),  # never send a delivered message again
        (S.PERMANENT_FAILURE, S.SENDING),
        (S.FAILED, S.PENDING),
        (S.PENDING, S.PENDING),
        (S.SENDING, S.SENDING),  # two workers on one row
        (S.PENDING, S.DELIVERED),  # nothing is delivered that was never sent
        (S.DELIVERED, S.PERMANENT_FAILURE),
    ],
)
def test_disallowed_transitions_raise(current: NotificationStatus, new: NotificationStatus) -> None:
    with pytest.raises(InvalidStatusTransition) as info:
        transition(current, new)
    assert info.value.current is current and info.value.new is new
    assert str(current) in str(info.value) and str(new) in str(info.value)


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError):
        transition("pending", "bounced")


@given(statuses, statuses)
def test_transition_agrees_with_the_table(current: NotificationStatus, new: NotificationStatus) -> None:
    if current in ALLOWED_FROM[new]:
        assert transition(current, new) is new and can_transition(current, new)
    else:
        assert not can_transition(current, new)
        with pytest.raises(InvalidStatusTransition):
            transition(current, new)


@given(statuses, statuses)
def test_nothing_leaves_a_final_status(final: NotificationStatus, new: NotificationStatus) -> None:
    assume(final in FINAL_STATUSES and new != final)
    assert is_final(final)
    assert not can_transition(final, new)


def test_pending_is_only_a_starting_status() -> None:
    assert not any(can_transition(s, S.PENDING) for s in NotificationStatus)


def test_quiet_hours_apply_to_family_texts_only() -> None:
    assert is_quiet_hours_channel("family", "sms")
    assert not is_quiet_hours_channel("family", "email")
    assert not is_quiet_hours_channel("caseworker", "sms")
    assert not is_quiet_hours_channel("manager", "sms")


# --- retry ---------------------------------------------------------------------------------------

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_backoff_doubles_from_10_seconds() -> None:
    policy = RetryPolicy()
    assert [policy.nominal_delay(n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 320, 640, 1280]


def test_backoff_is_capped_at_one_hour() -> None:
    policy = RetryPolicy(max_attempts=50)
    assert policy.nominal_delay(9) == 2560
    assert policy.nominal_delay(10) == 3600
    assert policy.nominal_delay(1000) == 3600  # no overflow


def test_next_attempt_for_a_retryable_error() -> None:
    policy = RetryPolicy()
    error = RetryableSendError("GOV.UK Notify answered 500")
    assert policy.next_attempt_at(1, error, NOW, rand=lambda: 0.0) == NOW + timedelta(seconds=5)
    latest = policy.next_attempt_at(1, error, NOW, rand=lambda: 0.999999)
    assert latest is not None and latest <= NOW + timedelta(seconds=10)
    assert policy.next_attempt_at(3, error, NOW, rand=lambda: 0.5) == NOW + timedelta(seconds=30)


def test_no_retry_after_eight_attempts() -> None:
    policy = RetryPolicy()
    error = RetryableSendError("timeout")
    assert policy.next_attempt_at(7, error, NOW) is not None
    assert policy.next_attempt_at(8, error, NOW) is None


@pytest.mark.parametrize("error", [PermanentSendError("400"), ValueError("bug"), RuntimeError("x")])
def test_only_retryable_errors_are_retried(error: Exception) -> None:
    assert RetryPolicy().next_attempt_at(1, error, NOW) is None


def test_retry_after_is_honoured_when_longer_but_stays_within_the_cap() -> None:
    policy = RetryPolicy()
    assert policy.next_attempt_at(1, RetryableSendError("429", retry_after=120), NOW) == NOW + timedelta(seconds=120)
    assert policy.next_attempt_at(1, RetryableSendError("429", retry_after=86400), NOW) == NOW + timedelta(hours=1)
    # a shorter Retry-After than our backoff does not make us hurry
    assert policy.next_attempt_at(4, RetryableSendError("429", retry_after=1), NOW, rand=lambda: 0.0) == (
        NOW + timedelta(seconds=40)
    )


def test_retry_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().next_attempt_at(1, RetryableSendError("x"), datetime(2026, 1, 1))


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0, max_value=1, exclude_max=True))
def test_jittered_delay_is_between_half_and_all_of_the_nominal(attempts: int, r: float) -> None:
    policy = RetryPolicy(max_attempts=1000)
    nominal = policy.nominal_delay(attempts)
    delay = policy.delay(attempts, rand=lambda: r)
    assert nominal / 2 <= delay <= nominal <= policy.cap_seconds


@given(st.integers(min_value=1, max_value=100))
def test_nominal_backoff_never_shrinks(attempts: int) -> None:
    policy = RetryPolicy(max_attempts=1000)
    assert policy.nominal_delay(attempts + 1) >= policy.nominal_delay(attempts)


def test_retry_policy_validates_its_settings() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base_seconds=0)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# --- quiet hours ---------------------------------------------------------------------------------


def london(year: int, month: int, day: int, hour: int, minute: int, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON, fold=fold)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (london(2026, 7, 1, 21, 0), london(2026, 7, 2, 8, 0)),  # summer evening (BST)
        (london(2026, 7, 2, 3, 0), london(2026, 7, 2, 8, 0)),  # summer night
        (london(2026, 1, 15, 7, 59), london(2026, 1, 15, 8, 0)),  # winter morning (GMT)
        (london(2026, 1, 15, 20, 0), london(2026, 1, 16, 8, 0)),  # start is inside
        (london(2026, 12, 31, 23, 30), london(2027, 1, 1, 8, 0)),  # across the year
    ],
)
def test_texts_in_quiet_hours_wait_for_eight(now: datetime, expected: datetime) -> None:
    assert quiet_hours_defer(now) == expected


@pytest.mark.parametrize("now", [london(2026, 1, 15, 8, 0), london(2026, 1, 15, 12, 0), london(2026, 7, 1, 19, 59)])
def test_texts_outside_quiet_hours_go_now(now: datetime) -> None:
    assert quiet_hours_defer(now) is None


def test_quiet_hours_across_the_spring_clock_change() -> None:
    # clocks go forward at 01:00 GMT on Sunday 29 March 2026: the night is an hour shorter
    now = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # 22:00 GMT, Saturday
    resume = quiet_hours_defer(now)
    assert resume is not None
    assert resume.astimezone(LONDON).replace(tzinfo=None) == datetime(2026, 3, 29, 8, 0)
    assert resume.astimezone(UTC) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 08:00 BST
    assert resume - now == timedelta(hours=9)


def test_quiet_hours_across_the_autumn_clock_change() -> None:
    # clocks go back at 02:00 BST on Sunday 25 October 2026: the night is an hour longer
    now = datetime(2026, 10, 24, 20, 30, tzinfo=UTC)  # 21:30 BST, Saturday
    resume = quiet_hours_defer(now)
    assert resume is not None
    assert resume.astimezone(UTC) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)  # 08:00 GMT
    assert resume - now == timedelta(hours=11, minutes=30)


@pytest.mark.parametrize("fold", [0, 1])
def test_quiet_hours_in_the_repeated_hour(fold: int) -> None:
    now = london(2026, 10, 25, 1, 30, fold=fold)  # 01:30 happens twice that night
    assert quiet_hours_defer(now) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)


def test_quiet_hours_within_one_day_and_none() -> None:
    assert quiet_hours_defer(london(2026, 5, 5, 12, 30), "12:00", "14:00") == london(2026, 5, 5, 14, 0)
    assert quiet_hours_defer(london(2026, 5, 5, 15, 0), "12:00", "14:00") is None
    assert quiet_hours_defer(london(2026, 5, 5, 23, 0), "08:00", "08:00") is None


def test_quiet_hours_refuse_a_naive_time_or_a_bad_setting() -> None:
    with pytest.raises(ValueError):
        quiet_hours_defer(datetime(2026, 1, 1, 22, 0))
    with pytest.raises(ValueError):
        quiet_hours_defer(london(2026, 1, 1, 22, 0), start="8pm")


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)))
def test_quiet_hours_properties(now: datetime) -> None:
    local = now.astimezone(LONDON)
    inside = local.hour >= 20 or local.hour < 8
    resume = quiet_hours_defer(now)
    assert (resume is not None) == inside
    if resume is not None:
        assert resume > now
        assert resume.astimezone(LONDON).time() == datetime(2000, 1, 1, 8, 0).time()
        assert resume - now <= timedelta(hours=13)  # 12 h of quiet, plus an hour on the autumn night
        assert quiet_hours_defer(resume) is None  # the answer is outside quiet hours


# --- rate limits ---------------------------------------------------------------------------------


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


NUMBER, OTHER = "+447900900123", "+447900900456"


def test_three_texts_per_number_per_hour() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert [limiter.try_acquire(NUMBER) for _ in range(3)] == [None, None, None]
    wait = limiter.try_acquire(NUMBER)
    assert wait == clock.now + timedelta(minutes=20)  # one token back every 20 minutes
    assert limiter.try_acquire(NUMBER) == wait  # a refusal takes nothing
    assert limiter.try_acquire(OTHER) is None  # another family is not held up
    clock.advance(20 * 60 - 1)
    assert limiter.try_acquire(NUMBER) is not None
    clock.advance(1)
    assert limiter.try_acquire(NUMBER) is None


def test_global_rate_like_notify() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=3000, burst=1000, clock=clock)
    assert all(limiter.try_acquire() is None for _ in range(1000))
    wait = limiter.try_acquire()
    assert wait == clock.now + timedelta(seconds=1 / 50)  # 3,000 a minute is 50 a second
    clock.advance(1)
    assert sum(limiter.try_acquire() is None for _ in range(100)) == 50


def test_a_refused_global_token_takes_no_per_number_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=1, per_number_per_hour=3, clock=clock)
    assert limiter.try_acquire(NUMBER) is None
    assert limiter.try_acquire(NUMBER) == clock.now + timedelta(seconds=1)
    clock.advance(1)
    assert limiter.try_acquire(NUMBER) is None
    clock.advance(1)
    assert limiter.try_acquire(NUMBER) is None  # the third: the number's bucket was not drained by refusals


def test_the_limiter_forgets_numbers_that_are_back_to_full() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, max_tracked_numbers=2)
    limiter.try_acquire("+447900900001")
    limiter.try_acquire("+447900900002")
    clock.advance(3600)
    limiter.try_acquire("+447900900003")
    assert len(limiter._numbers) == 1
    assert all(NUMBER not in key for key in limiter._numbers)  # digests, not numbers


def test_the_limiter_needs_an_aware_clock() -> None:
    with pytest.raises(ValueError):
        RateLimiter(clock=lambda: datetime(2026, 1, 1))


@given(st.lists(st.floats(min_value=0, max_value=900), min_size=1, max_size=60))
def test_per_number_grants_never_exceed_the_bucket(gaps: list[float]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    start = clock.now
    granted = 0
    for gap in gaps:
        clock.advance(gap)
        if limiter.try_acquire(NUMBER) is None:
            granted += 1
    hours = (clock.now - start).total_seconds() / 3600
    assert granted <= 3 + 3 * hours + 1e-9


@given(st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=80))
def test_a_wait_answer_is_always_in_the_future_and_then_true(gaps: list[float]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock)
    for gap in gaps:
        clock.advance(gap)
        wait = limiter.try_acquire()
        if wait is not None:
            assert wait > clock.now
            clock.now = wait
            assert limiter.try_acquire() is None


# --- phone numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["07900 900123", "07900900123", "+44 7900 900123", "+44 (0)7900 900123", "0044 7900 900123", "  07900-900-123 "],
)
def test_uk_mobiles_are_normalised_to_e164(raw: str) -> None:
    assert normalise_uk_mobile(raw) == "+447900900123"


def test_crown_dependency_mobiles_and_ofcom_drama_numbers_count() -> None:
    assert normalise_uk_mobile("07624 123456") == "+447624123456"  # Isle of Man
    assert normalise_uk_mobile("07700 900982") == "+447700900982"  # Ofcom's range for drama and tests


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("020 7946 0018", "landline"),
        ("0800 123 4567", "not a UK mobile"),
        ("070 1234 5678", "not a UK mobile"),  # a "personal number", not a mobile
        ("+33 6 12 34 56 78", "not a UK number"),
        ("07900 9001", "not a valid UK phone number"),
        ("call me", "no digits"),
        ("++44", "not a phone number"),
    ],
)
def test_numbers_that_cannot_take_texts_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        normalise_uk_mobile(raw)
    assert reason in info.value.reason
    assert not any(ch.isdigit() for ch in info.value.reason)  # safe to log and to store
