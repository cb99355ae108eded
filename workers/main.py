"""Entry point for `celery -A workers.main worker|beat` (a composition shim)."""

from pipeline.settings import Settings
from workers.celery_app import make_celery

app = make_celery(Settings.from_env())
