"""Bearer-token authentication for the peer: django-scim2 leaves authentication to the project
and only checks that `request.user` is authenticated (its SCIMAuthCheckMiddleware)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse


class IdentityProvider:
    """The authenticated principal of a request that carried the right token."""

    is_authenticated = True
    is_anonymous = False


class BearerTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.expected = f"Bearer {settings.PEER_BEARER_TOKEN}".encode()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get("Authorization", "").encode()
        known = bool(settings.PEER_BEARER_TOKEN) and hmac.compare_digest(offered, self.expected)
        user: Any = IdentityProvider() if known else AnonymousUser()
        request.user = user
        return self.get_response(request)
