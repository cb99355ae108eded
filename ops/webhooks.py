"""`scimflow webhook …`: a tenant's webhook endpoints, their secrets, replays and attempts.
See docs/EVENTS.md and docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TypeAlias

from scimflow.ops.output import emit, moment, operator_errors
from scimflow.ops.table import render
from scimflow.pipeline.services.webhooks import FORMATS, EndpointView, Webhooks
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

def add_parsers(commands: Commands) -> None:
    webhook = commands.add_parser("webhook", help="a tenant's webhook endpoints")
    actions = webhook.add_subparsers(title="webhook commands", metavar="COMMAND")
    _add_add(actions)
    listing = actions.add_parser("list", help="endpoints, their state and backlog "
                                              "(never their secrets)")
    listing.add_argument("tenant", nargs="?", help="tenant name or id (default: every tenant)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=webhook_list)
    remove = actions.add_parser("remove", help="delete an endpoint and its delivery attempts")
    remove.add_argument("id")
    remove.set_defaults(handler=webhook_remove)
    _add_state(actions)
    _add_history(actions)


def _add_add(actions: Commands) -> None:
    add = actions.add_parser("add", help="send a tenant's events to a URL from now on")
    add.add_argument("tenant", help="tenant name or id")
    add.add_argument("url", help="http(s) URL; private and loopback addresses are refused "
                                 "unless SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true")
    add.add_argument("--events", default="*",
                     help="comma-separated event types or patterns, e.g. user.*,group.* "
                          "(default: *, every event)")
    add.add_argument("--format", choices=FORMATS, default="json",
                     help="json (Standard Webhooks) or set (RFC 8417 Security Event Tokens)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(handler=webhook_add)


def _add_state(actions: Commands) -> None:
    rotate = actions.add_parser("rotate-secret", help="a new signing secret; the older ones "
                                                      "keep signing for the overlap")
    rotate.add_argument("id")
    rotate.add_argument("--overlap-hours", type=float, default=24.0,
                        help="how long older secrets keep signing (default: 24)")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(handler=webhook_rotate_secret)
    disable = actions.add_parser("disable", help="stop delivering (nothing is skipped: "
                                                 "enable resumes where it stopped)")
    disable.add_argument("id")
    disable.add_argument("--reason", default="disabled by an operator")
    disable.set_defaults(handler=webhook_disable)
    enable = actions.add_parser("enable", help="deliver again now, forgetting the backoff")
    enable.add_argument("id")
    enable.set_defaults(handler=webhook_enable)


def _add_history(actions: Commands) -> None:
    replay = actions.add_parser("replay", help="send the tenant's events again from a time "
                                               "or an event id")
    replay.add_argument("id")
    replay.add_argument("--since", required=True, metavar="TIME|EVENT_ID",
                        help="an ISO 8601 time (UTC unless it has an offset) or an event id")
    replay.set_defaults(handler=webhook_replay)
    deliveries = actions.add_parser("deliveries", help="an endpoint's latest delivery "
                                                       "attempts, newest first")
    deliveries.add_argument("id")
    deliveries.add_argument("--limit", type=int, default=50)
    deliveries.add_argument("--json", action="store_true")
    deliveries.set_defaults(handler=webhook_deliveries)



def _webhooks(settings: Settings) -> Webhooks:
    return Webhooks(make_sessions(make_engine(settings, "tool")),
                    allow_private=settings.webhook_allow_private_networks)


def _state(endpoint: EndpointView) -> str:
    if endpoint.enabled:
        return "failing" if endpoint.failing_since else "enabled"
    return f"disabled: {endpoint.disabled_reason}" if endpoint.disabled_reason else "disabled"


@operator_errors
def webhook_add(settings: Settings, args: argparse.Namespace) -> int:
    events = [event for event in args.events.split(",") if event.strip()]
    added = _webhooks(settings).add(args.tenant, args.url, events=events, format=args.format)
    endpoint = added.endpoint
    value = {**asdict(endpoint), "secret": added.secret}
    text = (f"endpoint: {endpoint.id} (tenant {endpoint.tenant})\n"
            f"url:      {endpoint.url}\n"
            f"events:   {','.join(endpoint.events)} ({endpoint.format})\n"
            f"secret:   {added.secret}\n"
            "The secret is shown once; give it to the receiver to verify signatures now.")
    emit(value, args.json, text)
    return 0


@operator_errors
def webhook_list(settings: Settings, args: argparse.Namespace) -> int:
    endpoints = _webhooks(settings).list(args.tenant)
    rows = [(e.id, e.tenant, e.url, ",".join(e.events), e.format, _state(e), e.cursor,
             e.backlog, e.failures, moment(e.next_attempt_at)) for e in endpoints]
    headers = ("ID", "TENANT", "URL", "EVENTS", "FORMAT", "STATE", "CURSOR", "BACKLOG",
               "FAILURES", "NEXT ATTEMPT")
    text = render(headers, rows) if rows else "(no webhook endpoints)"
    emit([asdict(e) for e in endpoints], args.json, text)
    return 0


@operator_errors
def webhook_remove(settings: Settings, args: argparse.Namespace) -> int:
    _webhooks(settings).remove(args.id)
    print(f"webhook endpoint {args.id} removed")
    return 0


@operator_errors
def webhook_rotate_secret(settings: Settings, args: argparse.Namespace) -> int:
    secret = _webhooks(settings).rotate_secret(args.id, overlap_hours=args.overlap_hours)
    value = {"id": args.id, "secret": secret, "overlap_hours": args.overlap_hours}
    text = (f"secret:   {secret}\n"
            f"The secret is shown once. Deliveries are signed with it and, for the next "
            f"{args.overlap_hours:g} h, with the older secrets too: switch the receiver "
            "to it within that time.")
    emit(value, args.json, text)
    return 0


@operator_errors
def webhook_disable(settings: Settings, args: argparse.Namespace) -> int:
    endpoint = _webhooks(settings).disable(args.id, args.reason)
    print(f"webhook endpoint {endpoint.id} disabled; {endpoint.backlog} event(s) wait "
          "for `scimflow webhook enable`")
    return 0


@operator_errors
def webhook_enable(settings: Settings, args: argparse.Namespace) -> int:
    endpoint = _webhooks(settings).enable(args.id)
    print(f"webhook endpoint {endpoint.id} enabled; {endpoint.backlog} event(s) to deliver")
    return 0


@operator_errors
def webhook_replay(settings: Settings, args: argparse.Namespace) -> int:
    count = _webhooks(settings).replay(args.id, since=args.since)
    print(f"webhook endpoint {args.id}: {count} event(s) to deliver from {args.since} on")
    return 0


@operator_errors
def webhook_deliveries(settings: Settings, args: argparse.Namespace) -> int:
    attempts = _webhooks(settings).deliveries(args.id, limit=args.limit)
    rows = [(moment(a.attempted_at), a.event_id, a.event_position, a.status_code,
             round(a.latency_ms, 1), a.error) for a in attempts]
    headers = ("ATTEMPTED", "EVENT", "POSITION", "STATUS", "LATENCY MS", "ERROR")
    text = render(headers, rows) if rows else "(no delivery attempts)"
    emit([asdict(a) for a in attempts], args.json, text)
    return 0
