"""django-scim2's endpoints under /scim/v2/ (the namespace must be `scim`), and a health check."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("scim/v2/", include("django_scim.urls", namespace="scim")),
    path("healthz", healthz),
]
