"""The events API: `GET /events` (cursor pages of event documents), `POST /events/poll`
(RFC 8936 poll-based SET delivery) and `GET /events/jwks.json` (the keys SETs verify with).

`/events` and `/events/poll` answer application keys only (`middleware.AppKeyAuthMiddleware`);
the JWKS is public, as receivers of pushed SETs need it without a key. Bodies are plain
`application/json`, errors included: `{"code", "message"}` on `/events`, RFC 8935 §2.3's
`{"err", "description"}` on `/events/poll`. See docs/EVENTS.md.
"""

from __future__ import annotations

import json
from typing import Any, cast

import falcon

from scimflow.api.media import read_json
from scimflow.api.middleware import app_grant_of
from scimflow.api.services import EventsApi
from scimflow.pipeline.errors import InvalidSyntax
from scimflow.pipeline.services.events_feed import FeedError
from scimflow.pipeline.services.poll_feed import PollRequest

EVENTS_PATH = "/events"
POLL_PATH = "/events/poll"
JWKS_PATH = "/events/jwks.json"
JWKS_MEDIA_TYPE = "application/jwk-set+json"
# Receivers may cache the keys a while; one meeting an unknown `kid` fetches them again.
JWKS_CACHE_CONTROL = "public, max-age=300"


class EventsEndpoint:
    def __init__(self, events: EventsApi) -> None:
        self._events = events

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self._events.feed.list(
            app_grant_of(req),
            after=req.get_param("after"),
            limit=req.get_param("limit"),
            types=req.get_param("types"),
            tenant=req.get_param("tenant"),
        )
        resp.content_type = falcon.MEDIA_JSON
        resp.media = page.to_json()


class PollEndpoint:
    def __init__(self, events: EventsApi, max_body_bytes: int) -> None:
        self._events = events
        self._max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        grant = app_grant_of(req)
        try:
            body = read_json(req, self._max_body_bytes)
        except InvalidSyntax as ex:
            raise FeedError(ex.detail) from None
        response = self._events.poll.poll(grant, PollRequest.from_json(body))
        resp.content_type = falcon.MEDIA_JSON
        resp.media = response.to_json()


class JwksEndpoint:
    def __init__(self, events: EventsApi) -> None:
        self._events = events

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = JWKS_MEDIA_TYPE
        resp.set_header("Cache-Control", JWKS_CACHE_CONTROL)
        resp.text = json.dumps(self._events.signer.jwks(), separators=(",", ":"))


def handle_feed_error(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: dict[str, Any]
) -> None:
    # Falcon calls this handler only for FeedError, the class it is registered for.
    feed_error = cast(FeedError, error)
    if req.path == POLL_PATH:
        body = {"err": feed_error.code, "description": feed_error.description}
    else:
        body = {"code": feed_error.code, "message": feed_error.description}
    resp.status = feed_error.status
    resp.content_type = falcon.MEDIA_JSON
    resp.media = body
