"""The events feed and the RFC 8936 poll feed on SQLite and PostgreSQL, over events the real
drain wrote; and the SET signing keys, created once and published as a JWKS."""

from __future__ import annotations

import threading

from sqlalchemy import select

from scimflow.pipeline.events.sets import verify_set
from scimflow.pipeline.services.app_keys import AppKeys
from scimflow.pipeline.services.events_feed import EventsFeed
from scimflow.pipeline.services.poll_feed import PollFeed, PollRequest
from scimflow.pipeline.services.set_signing import SetSigner
from scimflow.pipeline.store.app_keys import AppGrant
from scimflow.pipeline.store.feed_tables import EventFeed, EventFeedAck
from tests.integration.conftest import Services

ISSUER = "https://scim.example.test"


def grant_for(services: Services, *tenants: str) -> AppGrant:
    keys = AppKeys(services.sessions, cache_seconds=0)
    issued = keys.create(tenants=list(tenants) or None)
    grant = keys.authenticate(issued.key)
    assert grant is not None
    return grant


def test_the_feed_pages_what_the_drain_applied_in_order(services: Services) -> None:
    acme, globex = services.tenant("acme"), services.tenant("globex")
    ann = services.user(acme, "ann")
    services.group(acme, "crew", [ann])
    services.user(globex, "bob")
    services.drain()
    feed = EventsFeed(services.sessions)

    everything = feed.list(grant_for(services))
    kinds = [(event["tenant"], event["type"]) for event in everything.data]
    assert kinds[0] == (acme.id, "user.created")
    assert (acme.id, "group.member_added") in kinds and (globex.id, "user.created") in kinds
    positions = [int(event["cursor"].removeprefix("pos_")) for event in everything.data]
    assert positions == sorted(positions)

    acme_only = grant_for(services, "acme")
    first = feed.list(acme_only, limit="1")
    rest = feed.list(acme_only, after=first.next_cursor)
    assert first.has_more and not rest.has_more
    assert {event["tenant"] for event in first.data + rest.data} == {acme.id}
    assert [e["id"] for e in first.data + rest.data] == [
        e["id"] for e in everything.data if e["tenant"] == acme.id]


def test_acknowledgements_out_of_order_wait_until_the_position_reaches_them(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    for name in ("ann", "bob", "cy"):
        services.user(acme, name)
    services.drain()
    signer = SetSigner(services.sessions, issuer=ISSUER)
    feed = PollFeed(services.sessions, signer)
    grant = grant_for(services)

    handed = feed.poll(grant, PollRequest(return_immediately=True))
    first, second, third = handed.sets
    feed.poll(grant, PollRequest(ack=(second, third), max_events=0))
    assert feed_state(services, grant) == (0, 2)  # the first still outstanding
    again = feed.poll(grant, PollRequest(return_immediately=True))
    assert list(again.sets) == [first]

    feed.poll(grant, PollRequest(ack=(first,), max_events=0))
    position, acks = feed_state(services, grant)
    assert acks == 0 and position > 0
    assert feed.poll(grant, PollRequest(return_immediately=True)).sets == {}

    claims = verify_set(handed.sets[first], signer.jwks(), audience=grant.key_id)
    assert claims["iss"] == ISSUER and claims["sub_id"]["userName"] == "ann"


def feed_state(services: Services, grant: AppGrant) -> tuple[int, int]:
    """The feed's position and how many acknowledgements wait above it."""
    with services.sessions.begin() as session:
        position = session.scalar(
            select(EventFeed.position).where(EventFeed.app_key_id == grant.key_id))
        acks = session.scalars(
            select(EventFeedAck.event_position).where(EventFeedAck.app_key_id == grant.key_id)
        ).all()
    return int(position or 0), len(acks)


def test_one_signing_key_is_created_and_reused(services: Services) -> None:
    first = SetSigner(services.sessions, issuer=ISSUER).current_key()
    assert SetSigner(services.sessions, issuer=ISSUER).current_key() == first
    assert [key["kid"] for key in SetSigner(services.sessions, issuer=ISSUER).jwks()["keys"]
            ] == [first.kid]


def test_signers_racing_for_the_first_key_sign_sets_that_verify(services: Services) -> None:
    acme = services.tenant("acme")
    services.user(acme, "ann")
    services.drain()
    event = EventsFeed(services.sessions).list(grant_for(services)).data[0]
    signers = [SetSigner(services.sessions, issuer=ISSUER) for _ in range(4)]
    start = threading.Barrier(len(signers))
    tokens: list[str] = []

    def sign(signer: SetSigner) -> None:
        start.wait()
        tokens.append(signer.sign(event, audience="app"))

    threads = [threading.Thread(target=sign, args=(signer,)) for signer in signers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jwks = signers[0].jwks()
    assert 1 <= len(jwks["keys"]) <= len(signers) and len(tokens) == len(signers)
    for token in tokens:
        assert verify_set(token, jwks, audience="app")["jti"] == event["id"]
