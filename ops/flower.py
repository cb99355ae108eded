"""`scimflow flower`: Flower, Celery's monitor, on the configured broker and always behind basic
authentication.

Flower shows task arguments and can stop workers, so it never starts without a credential.
The credential (`SCIMFLOW_FLOWER_BASIC_AUTH`, or the file `SCIMFLOW_FLOWER_BASIC_AUTH_FILE`
names) reaches Flower through its FLOWER_BASIC_AUTH environment variable: a command line is
readable by every user of the machine (`ps`), the environment of a process only by its owner.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scimflow.pipeline.settings import ConfigError, Settings

if TYPE_CHECKING:
    from celery import Celery

WHO = "`scimflow flower`"
# Flower options read from the environment that would let a request past basic auth.
_AUTH_BYPASSES = ("FLOWER_UNAUTHENTICATED_API",)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    flower = commands.add_parser(
        "flower", help="run Flower on the broker, behind SCIMFLOW_FLOWER_BASIC_AUTH"
    )
    flower.add_argument("--address", default="127.0.0.1",
                        help="interface to listen on (default: loopback only)")
    flower.add_argument("--port", type=int, default=5555)
    flower.set_defaults(handler=run_flower, needs_schema=False)


def run_flower(settings: Settings, args: argparse.Namespace) -> int:
    """Replace this process with Flower, or raise ConfigError without starting anything."""
    settings.require_broker(WHO)
    credential = require_credential(settings)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port} is not a TCP port (1-65535)")
    argv = flower_argv(args.address, args.port, settings.log_level)
    os.execve(sys.executable, argv, flower_environment(os.environ, credential))


def require_credential(settings: Settings) -> str:
    """`user:password`, or several separated by commas: each with a user and a password.

    The message never repeats the value: a malformed credential may still hold a password.
    """
    credential = settings.flower_basic_auth
    if not credential:
        raise ConfigError(
            "SCIMFLOW_FLOWER_BASIC_AUTH (or SCIMFLOW_FLOWER_BASIC_AUTH_FILE) is not set: "
            f"{WHO} refuses to start without authentication (user:password)"
        )
    for entry in credential.split(","):
        user, colon, password = entry.partition(":")
        if not (user and colon and password) or user != user.strip():
            raise ConfigError(
                "SCIMFLOW_FLOWER_BASIC_AUTH must be user:password (several separated by "
                f"commas), each with a user and a password: {WHO} refuses to start"
            )
    return credential


def flower_argv(address: str, port: int, log_level: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", f"{__name__}:app", "flower",
            f"--address={address}", f"--port={port}", f"--logging={log_level.lower()}"]


def monitor_app(settings: Settings) -> Celery:
    """The workers' Celery configuration on the broker's own transport.

    Flower reads queue lengths (its Broker page) only through a transport it knows by the
    URL's scheme; the workers' reconnecting Redis transport (workers/redis_transport.py)
    matters to a consumer, not to a monitor, and would hide every queue from Flower.
    """
    from scimflow.workers.celery_app import make_celery  # noqa: PLC0415 - Flower's process only

    app = make_celery(settings)
    app.conf.broker_transport = None
    return app


def __getattr__(name: str) -> Any:
    # `celery -A scimflow.ops.flower:app`: built in Flower's process, never at import.
    if name == "app":
        globals()["app"] = monitor_app(Settings.from_env())
        return globals()["app"]
    raise AttributeError(name)


def flower_environment(environ: Mapping[str, str], credential: str) -> dict[str, str]:
    env = {name: value for name, value in environ.items() if name not in _AUTH_BYPASSES}
    env["FLOWER_BASIC_AUTH"] = credential
    return env
