"""`scimflow operator …`: the accounts that sign in to the console (not tenants: an operator
reads every tenant and replays dead letters, and is never valid on /scim/v2).
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TypeAlias

from scimflow.ops.output import emit, moment, operator_errors
from scimflow.ops.table import render
from scimflow.pipeline.services.operators import OperatorAccounts
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parsers(commands: Commands) -> None:
    operator = commands.add_parser("operator", help="console operator accounts")
    actions = operator.add_subparsers(title="operator commands", metavar="COMMAND")
    create = actions.add_parser("create", help="add an operator (asks for a password)")
    create.add_argument("username")
    _add_password_stdin(create)
    create.set_defaults(handler=operator_create)
    listing = actions.add_parser("list", help="every operator")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=operator_list)
    remove = actions.add_parser("remove", help="remove an operator and end its sessions")
    remove.add_argument("username")
    remove.set_defaults(handler=operator_remove)
    password = actions.add_parser("password",
                                  help="set an operator's password (ends its sessions)")
    password.add_argument("username")
    _add_password_stdin(password)
    password.set_defaults(handler=operator_password)


def _add_password_stdin(action: argparse.ArgumentParser) -> None:
    action.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input")


def _accounts(settings: Settings) -> OperatorAccounts:
    return OperatorAccounts(make_sessions(make_engine(settings, "tool")))


def read_password(from_stdin: bool) -> str:
    """The first line of stdin, or typed twice at a prompt that does not echo it."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise ValueError("the two passwords differ")
    return password


@operator_errors
def operator_create(settings: Settings, args: argparse.Namespace) -> int:
    created = _accounts(settings).create(args.username, read_password(args.password_stdin))
    print(f"operator {created.username} created")
    return 0


@operator_errors
def operator_list(settings: Settings, args: argparse.Namespace) -> int:
    operators = _accounts(settings).list()
    rows = [(o.username, moment(o.created_at)) for o in operators]
    text = render(("USERNAME", "CREATED"), rows) if rows else "(no operators)"
    values = [{"id": o.id, "username": o.username, "created_at": o.created_at}
              for o in operators]
    emit(values, args.json, text)
    return 0


@operator_errors
def operator_remove(settings: Settings, args: argparse.Namespace) -> int:
    _accounts(settings).remove(args.username)
    print(f"operator {args.username} removed; its console sessions ended")
    return 0


@operator_errors
def operator_password(settings: Settings, args: argparse.Namespace) -> int:
    _accounts(settings).set_password(args.username, read_password(args.password_stdin))
    print(f"password of operator {args.username} set; its console sessions ended")
    return 0
