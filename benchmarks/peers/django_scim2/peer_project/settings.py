"""A synchronous SCIM server to compare scimflow with: django-scim2 0.x on PostgreSQL.

Everything the benchmark varies comes from the environment (`PEER_*`), so one checkout serves
any scratch database. Production-shaped: DEBUG off, persistent database connections (Django's
default opens a connection per request, which no production deployment keeps), no sessions
or templates (a SCIM API needs neither).
"""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("PEER_SECRET_KEY", "peer-benchmark-only")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_scim",
    "directory",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "peer_project.auth.BearerTokenMiddleware",
]
ROOT_URLCONF = "peer_project.urls"
WSGI_APPLICATION = "peer_project.wsgi.application"
AUTH_USER_MODEL = "directory.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PEER_DATABASE_NAME", "peer_scim"),
        "USER": os.environ.get("PEER_DATABASE_USER", "postgres"),
        "PASSWORD": os.environ.get("PEER_DATABASE_PASSWORD", ""),
        "HOST": os.environ.get("PEER_DATABASE_HOST", "127.0.0.1"),
        "PORT": os.environ.get("PEER_DATABASE_PORT", "5432"),
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }
}

# Bearer token the IdP sends; the middleware compares it in constant time.
PEER_BEARER_TOKEN = os.environ.get("PEER_BEARER_TOKEN", "")

SCIM_SERVICE_PROVIDER = {
    "NETLOC": "localhost",
    "AUTHENTICATION_SCHEMES": [
        {"type": "oauthbearertoken", "name": "OAuth Bearer Token",
         "description": "a static bearer token, compared by the peer's middleware"},
    ],
    "USER_MODEL_GETTER": "django.contrib.auth.get_user_model",
    "GROUP_MODEL": "directory.models.Group",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
