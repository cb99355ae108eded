"""The authentication back-off with an injected clock."""

from __future__ import annotations

from scimflow.pipeline.services.auth_throttle import AuthFailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, **options: int) -> AuthFailureThrottle:
    return AuthFailureThrottle(limit=3, window_seconds=60, clock=clock, **options)


def test_the_limit_th_failure_starts_a_refusal_of_one_window() -> None:
    clock = Clock()
    limiter = throttle(clock)
    assert [limiter.failed("10.0.0.1") for _ in range(3)] == [False, False, True]
    assert limiter.refusal("10.0.0.1", "guess") == 60
    clock.now += 59.5
    assert limiter.refusal("10.0.0.1", "guess") == 1
    clock.now += 0.5
    assert limiter.refusal("10.0.0.1", "guess") is None


def test_failures_spread_over_more_than_a_window_are_not_refused() -> None:
    clock = Clock()
    limiter = throttle(clock)
    for _ in range(5):
        limiter.failed("10.0.0.1")
        limiter.failed("10.0.0.1")
        clock.now += 61
    assert limiter.refusal("10.0.0.1", "guess") is None


def test_other_sources_and_trusted_tokens_pass() -> None:
    clock = Clock()
    limiter = throttle(clock)
    limiter.succeeded("acme")
    for _ in range(3):
        limiter.failed("10.0.0.1")
    assert limiter.refusal("10.0.0.2", "guess") is None
    assert limiter.refusal("10.0.0.1", "acme") is None
    assert limiter.refusal("10.0.0.1", "guess") is not None


def test_a_success_does_not_reset_the_failures_of_its_address() -> None:
    clock = Clock()
    limiter = throttle(clock)
    limiter.failed("10.0.0.1")
    limiter.failed("10.0.0.1")
    limiter.succeeded("acme")
    assert limiter.failed("10.0.0.1") is True


def test_trust_expires_after_a_window() -> None:
    clock = Clock()
    limiter = throttle(clock)
    limiter.succeeded("acme")
    clock.now += 61
    for _ in range(3):
        limiter.failed("10.0.0.1")
    assert limiter.refusal("10.0.0.1", "acme") is not None


def test_memory_is_bounded_and_the_oldest_forgotten() -> None:
    clock = Clock()
    limiter = throttle(clock, max_sources=2, max_trusted=2)
    for _ in range(3):
        limiter.failed("10.0.0.1")
    limiter.failed("10.0.0.2")
    limiter.failed("10.0.0.3")
    assert limiter.refusal("10.0.0.1", "guess") is None  # forgotten
    for key in ("a", "b", "c"):
        limiter.succeeded(key)
    for _ in range(3):
        limiter.failed("10.0.0.4")
    assert limiter.refusal("10.0.0.4", "a") is not None
    assert limiter.refusal("10.0.0.4", "c") is None


def test_a_zero_limit_turns_it_off() -> None:
    limiter = AuthFailureThrottle(limit=0, window_seconds=60)
    assert not any(limiter.failed("10.0.0.1") for _ in range(100))
    assert limiter.refusal("10.0.0.1", "guess") is None
