"""Signing events as Security Event Tokens with the keys kept in `event_signing_keys`, and the
JWKS that verifies them. Used by the poll feed (`events_feed.py`) and by webhook delivery of
`set` endpoints alike, so a receiver verifies both with one JWKS.

The newest unretired key signs. None exists before the first SET: the first signer creates
one. Two processes doing so at once each insert their own key; both then read back the newest,
and as every unretired key is published, a SET signed by either verifies.
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.events.sets import (
    ACTIVATE,
    CREATE_FULL,
    DEACTIVATE,
    DELETE,
    PATCH_FULL,
    PUT_FULL,
    ROLES_CHANGED,
    SESSION_REVOKED,
    SigningKey,
    event_set,
    generate_signing_key,
    public_jwks,
)
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.store import signing_keys
from scimflow.pipeline.store.db import unit_of_work

# Every event URI a scimflow SET may carry (RFC 9967 §4 `eventUris`).
EVENT_URIS = (CREATE_FULL, PUT_FULL, PATCH_FULL, DELETE, ACTIVATE, DEACTIVATE, SESSION_REVOKED,
              ROLES_CHANGED)
# A key is read from the database at most this often per process (a rotation, seen by then).
KEY_CACHE_SECONDS = 60.0


class SetSigner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        issuer: str,
        clock: Clock = utc_now,
        cache_seconds: float = KEY_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        # The public URL as published (JWKS and poll URLs are advertised without a final /).
        self.issuer = issuer.rstrip("/")
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cached: tuple[SigningKey, float] | None = None

    def current_key(self) -> SigningKey:
        """The newest unretired key, created and stored if there is none."""
        if self._cached is not None and self._cached[1] > self._monotonic():
            return self._cached[0]
        key = self._newest() or self._create()
        self._cached = (key, self._monotonic() + self._cache_seconds)
        return key

    def jwks(self) -> dict[str, Any]:
        """The public keys of every unretired key (RFC 7517 JWK Set); a receiver may fetch it
        before the first SET is signed, so the first key is made now if there is none."""
        self.current_key()
        with unit_of_work(self._sessions) as session:
            return public_jwks(signing_keys.unretired(session))

    def sign(self, document: Mapping[str, object], *, audience: str) -> str:
        """The SET of one event document, issued now, for `audience`."""
        return event_set(document, issuer=self.issuer, audience=audience,
                         key=self.current_key(), issued_at=int(self._clock().timestamp()))

    def _newest(self) -> SigningKey | None:
        with unit_of_work(self._sessions) as session:
            newest = signing_keys.unretired(session, limit=1)
        return newest[0] if newest else None

    def _create(self) -> SigningKey:
        key = generate_signing_key()
        with unit_of_work(self._sessions) as session:
            signing_keys.store(session, key, now=self._clock())
        # Read back rather than use our own: a racing process may have stored a newer one, and
        # every process should settle on one key.
        return self._newest() or key
