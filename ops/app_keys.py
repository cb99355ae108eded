"""`scimflow app-key …`: the application keys that read the events API (and the application
API). A key is printed once, when created; only its SHA-256 is stored.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TypeAlias

from scimflow.ops.output import emit, moment
from scimflow.ops.table import render
from scimflow.pipeline.services.app_keys import AppKeys
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parsers(commands: Commands) -> None:
    app_key = commands.add_parser("app-key", help="create, list or revoke application keys")
    actions = app_key.add_subparsers(title="app-key commands", metavar="COMMAND")
    create = actions.add_parser("create", help="create a key (printed once)")
    create.add_argument("--tenant", action="append", dest="tenants", metavar="TENANT",
                        help="a tenant (name or id) the key may read; repeat for several; "
                             "none: every tenant")
    create.add_argument("--label", default="", help="what the key is for")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=app_key_create)
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=app_key_list)
    revoke = actions.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id", metavar="ID")
    revoke.set_defaults(handler=app_key_revoke)


def _app_keys(settings: Settings) -> AppKeys:
    return AppKeys(make_sessions(make_engine(settings, "tool")), cache_seconds=0)


def app_key_create(settings: Settings, args: argparse.Namespace) -> int:
    issued = _app_keys(settings).create(label=args.label, tenants=args.tenants)
    scope = ", ".join(issued.tenants) if issued.tenants is not None else "every tenant"
    text = (f"id:      {issued.id}\n"
            f"tenants: {scope}\n"
            f"key:     {issued.key}\n"
            "The key is shown once; store it in the application's settings now.")
    emit({"id": issued.id, "key": issued.key, "tenants": issued.tenants}, args.json, text)
    return 0


def app_key_list(settings: Settings, args: argparse.Namespace) -> int:
    keys = _app_keys(settings).list()
    rows = [(key.id, key.label, "all" if key.tenants is None else ",".join(key.tenants),
             moment(key.created_at), moment(key.revoked_at)) for key in keys]
    text = (render(("ID", "LABEL", "TENANTS", "CREATED", "REVOKED"), rows) if rows
            else "(no application keys)")
    emit([asdict(key) for key in keys], args.json, text)
    return 0


def app_key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    revoked = _app_keys(settings).revoke(args.key_id)
    print(f"application key {args.key_id} "
          + (f"revoked: API processes refuse it within {settings.token_cache_seconds:g} s"
             if revoked else "was already revoked"))
    return 0
