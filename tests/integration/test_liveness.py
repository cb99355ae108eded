"""The pipeline's liveness: stalled exactly when due work waits and no worker drains."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.services.liveness import BEAT_EVERY_SECONDS, Pulse, Readiness, assess
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import heartbeats
from scimflow.pipeline.store.migrate import head_revision
from scimflow.pipeline.store.models import JournalEntry
from scimflow.workers.dispatch import broker_check
from tests.integration.conftest import Services, stamp_schema

STALL = 120.0


def age_journal(services: Services, seconds: float) -> None:
    with services.sessions.begin() as session:
        session.execute(update(JournalEntry).values(
            created_at=utc_now() - timedelta(seconds=seconds)
        ))


def liveness_at(services: Services, now: datetime) -> tuple[bool, float | None]:
    with services.sessions.begin() as session:
        seen = assess(session, now=now, stall_seconds=STALL)
    return seen.stalled, seen.oldest_due_seconds


def test_work_waiting_with_no_drain_ever_is_stalled(services: Services) -> None:
    services.user(services.tenant("acme"), "ann")
    age_journal(services, 0)
    assert liveness_at(services, utc_now()) == (False, None)  # too recent to say
    age_journal(services, STALL + 30)
    stalled, oldest = liveness_at(services, utc_now())
    assert stalled and oldest is not None and oldest >= STALL + 30


def test_a_recent_drain_means_moving_even_with_old_work(services: Services) -> None:
    tenant = services.tenant("acme")
    services.user(tenant, "ann")
    services.drainer.drain()  # records the drain heartbeat
    services.user(tenant, "bob")
    age_journal(services, STALL + 30)
    assert liveness_at(services, utc_now()) == (False, None)
    # ...until that drain itself is older than the stall time.
    assert liveness_at(services, utc_now() + timedelta(seconds=STALL + 1))[0]


def test_postponed_work_is_not_due(services: Services) -> None:
    services.user(services.tenant("acme"), "ann")
    age_journal(services, STALL + 30)
    with services.sessions.begin() as session:
        session.execute(update(JournalEntry).values(
            not_before=utc_now() + timedelta(minutes=5)
        ))
    assert liveness_at(services, utc_now()) == (False, None)


def test_an_empty_pipeline_is_not_stalled(services: Services) -> None:
    services.tenant("acme")
    assert liveness_at(services, utc_now() + timedelta(days=1)) == (False, None)



def test_readiness_refuses_with_503_while_stalled(services: Services,
                                                  database_url: str) -> None:
    stamp_schema(database_url, "head")
    services.user(services.tenant("acme"), "ann")
    ready = Readiness(services.sessions, stall_seconds=STALL, clock=utc_now)
    age_journal(services, 0)
    ready()  # fresh work: ready
    age_journal(services, STALL + 30)
    with pytest.raises(Unavailable, match="no worker has ever drained") as refused:
        ready()
    assert refused.value.status == 503
    services.drainer.drain()
    ready()


def test_readiness_refuses_a_schema_behind_this_version(services: Services,
                                                        database_url: str) -> None:
    ready = Readiness(services.sessions, stall_seconds=STALL, clock=utc_now)
    stamp_schema(database_url, "base")
    with pytest.raises(Unavailable, match=r"schema is at nothing.*run `scimflow migrate`"):
        ready()
    stamp_schema(database_url, "0013")
    with pytest.raises(Unavailable, match=f"at 0013, this scimflow needs {head_revision()}"):
        ready()
    stamp_schema(database_url, "head")
    ready()


def test_readiness_refuses_while_the_broker_does_not_answer(services: Services,
                                                            database_url: str) -> None:
    stamp_schema(database_url, "head")
    # Nothing listens on port 1 of loopback: the connection is refused at once.
    unreachable = broker_check(Settings(broker_url="redis://127.0.0.1:1/0"))
    ready = Readiness(services.sessions, stall_seconds=STALL, clock=utc_now,
                      broker_check=unreachable)
    with pytest.raises(Unavailable, match="the broker does not answer") as refused:
        ready()
    assert refused.value.status == 503


def test_a_pulse_writes_at_most_every_few_seconds(services: Services) -> None:
    ticks = iter([0.0, 1.0, BEAT_EVERY_SECONDS + 0.5])
    stamps = iter([utc_now() - timedelta(minutes=9), utc_now() - timedelta(minutes=5),
                   utc_now() - timedelta(minutes=1)])
    pulse = Pulse(services.sessions, heartbeats.SWEEP, clock=lambda: next(stamps),
                  monotonic=lambda: next(ticks))
    seen = []
    for _ in range(3):
        pulse.beat()
        with services.sessions.begin() as session:
            seen.append(heartbeats.last_beats(session)[heartbeats.SWEEP])
    assert seen[0] == seen[1] != seen[2]
