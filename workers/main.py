"""Entry point for `celery -A scimflow.workers.main worker|beat` (a composition shim)."""

from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import make_celery

app = make_celery(Settings.from_env())
