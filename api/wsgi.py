"""Composition root of the API process: one Settings read builds the services and the app.

`production_app()` is what the API servers serve, built in each server process after the fork;
`build_app(settings, dispatcher)` wires the app around any doorbell (`scimflow serve` passes its
in-process worker). See docs/ARCHITECTURE.md ("Layers").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.app import create_app
from scimflow.api.metrics import BacklogCollector, TenantBacklog, scrape_registry
from scimflow.api.resources.events import JWKS_PATH, POLL_PATH
from scimflow.api.services import ApiServices, ApplicationApi, EventsApi, WsgiApp
from scimflow.pipeline import logs
from scimflow.pipeline.passwords.setup import api_protector, require_password_key
from scimflow.pipeline.ports import Dispatcher, utc_now
from scimflow.pipeline.scim.discovery import Capabilities, SecurityEvents
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.services.admission import Admission, AdmissionLimits
from scimflow.pipeline.services.app_keys import AppKeys
from scimflow.pipeline.services.app_sessions import SessionService
from scimflow.pipeline.services.app_users import AppTenants, AppUsers
from scimflow.pipeline.services.events_feed import EventsFeed
from scimflow.pipeline.services.liveness import Readiness
from scimflow.pipeline.services.logins import LoginService
from scimflow.pipeline.services.poll_feed import PollFeed
from scimflow.pipeline.services.reads import ReadService
from scimflow.pipeline.services.set_signing import EVENT_URIS, SetSigner
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.services.tenant_protocols import TenantProtocols
from scimflow.pipeline.services.traffic import TrafficRecorder
from scimflow.pipeline.services.writes import WriteService
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import backlog
from scimflow.pipeline.store.db import make_engine, make_sessions, unit_of_work


def tenant_protocols(settings: Settings, sessions: sessionmaker[Session]) -> TenantProtocols:
    """Each tenant's protocol (built-in schemas plus its declared extensions)."""
    return TenantProtocols(
        sessions,
        default_registry(),
        protect_password=api_protector(settings),
        cache_seconds=settings.token_cache_seconds,
    )


def admission(settings: Settings, sessions: sessionmaker[Session]) -> Admission:
    return Admission(
        sessions,
        AdmissionLimits(
            tenant_backlog=settings.tenant_backlog_limit,
            global_backlog=settings.global_backlog_limit,
            tenant_in_flight=settings.tenant_in_flight_limit,
        ),
    )


def events_api(settings: Settings, sessions: sessionmaker[Session]) -> EventsApi:
    """The events API's services: SETs are issued by the public URL (as webhook delivery
    issues them); application keys are cached as long as the tenants' tokens."""
    signer = SetSigner(sessions, issuer=settings.public_url)
    return EventsApi(
        app_keys=AppKeys(sessions, cache_seconds=settings.token_cache_seconds),
        feed=EventsFeed(sessions),
        poll=PollFeed(sessions, signer),
        signer=signer,
    )


def application_api(
    settings: Settings,
    sessions: sessionmaker[Session],
    protocols: TenantProtocols,
    dispatcher: Dispatcher,
) -> ApplicationApi:
    """The application API's services; a login's user is journaled and rung like a SCIM write."""
    return ApplicationApi(
        tenants=AppTenants(sessions, cache_seconds=settings.token_cache_seconds),
        users=AppUsers(sessions),
        sessions=SessionService(sessions),
        logins=LoginService(sessions, protocols, dispatcher),
    )


def security_events(settings: Settings) -> SecurityEvents:
    """What /ServiceProviderConfig says of the SETs (RFC 9967 §4) and where to get them."""
    public = settings.public_url.rstrip("/")
    return SecurityEvents(EVENT_URIS, poll_url=public + POLL_PATH, jwks_url=public + JWKS_PATH)


def build_app(settings: Settings, dispatcher: Dispatcher,
              broker_check: Callable[[], None] | None = None) -> WsgiApp:
    sessions = make_sessions(make_engine(settings, "api"))
    protocols = tenant_protocols(settings, sessions)

    services = ApiServices(
        settings=settings,
        tenancy=Tenancy(sessions, cache_seconds=settings.token_cache_seconds),
        writes=WriteService(
            sessions, protocols, dispatcher, admission=admission(settings, sessions)
        ),
        reads=ReadService(sessions, protocols, max_results=settings.filter_max_results),
        registry=default_registry(),
        capabilities=Capabilities(filter_max_results=settings.filter_max_results, bulk=False,
                                  security_events=security_events(settings)),
        ready=Readiness(sessions, stall_seconds=settings.stall_seconds, clock=utc_now,
                        broker_check=broker_check),
        protocols=protocols,
        events=events_api(settings, sessions),
        application=application_api(settings, sessions, protocols, dispatcher),
        traffic=TrafficRecorder(sessions),
    )
    return create_app(services, scrape_registry(BacklogCollector(backlog_reader(sessions))))


def backlog_reader(sessions: sessionmaker[Session]) -> Callable[[], Mapping[str, TenantBacklog]]:
    """The backlog per tenant, as /metrics reads it at scrape time (one query)."""

    def read() -> Mapping[str, TenantBacklog]:
        with unit_of_work(sessions) as session:
            rows = backlog.pending_by_tenant(session)
        return {name: TenantBacklog(count, _aware(oldest))
                for name, (count, oldest) in rows.items()}

    return read


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def configure_logging(settings: Settings) -> None:
    """The API process's logging (pipeline/logs.py); `scimflow serve` and the console call it
    too."""
    logs.configure_logging(settings)


def production_app() -> WsgiApp:
    from scimflow.workers.dispatch import (  # noqa: PLC0415 - production only
        broker_check,
        broker_dispatcher,
    )

    settings = Settings.from_env()
    require_password_key(settings, "the API")
    configure_logging(settings)
    # One drain message per tenant per window instead of one per request. A server process
    # lives far longer than a window; a ring still waiting when it stops, the sweeper re-rings.
    return build_app(settings, broker_dispatcher(settings, coalesce=True),
                     broker_check(settings))


def __getattr__(name: str) -> Any:
    # Built on first access, in each gunicorn worker process (after fork), never at import.
    if name == "app":
        globals()["app"] = production_app()
        return globals()["app"]
    raise AttributeError(name)
