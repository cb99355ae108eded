"""The WSGI callable for uWSGI (`SCIMFLOW_API_SERVER=uwsgi`), built when the module is imported.

uWSGI looks the callable up in the module's namespace, so `scimflow.api.wsgi`'s lazily built
`app` (a module `__getattr__`) is invisible to it. `scimflow api` starts uWSGI with
`--lazy-apps`, which imports this module in each worker after the fork: every process builds
its own engine, pools and doorbell thread, as under gunicorn.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from scimflow.api.wsgi import production_app

application = production_app()
