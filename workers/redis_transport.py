"""kombu's Redis transport, with a worker that survives its broker being restarted.

A channel whose transport was torn down (kombu 5.7 still uses it after the drop, to put
unacknowledged messages back or acknowledge a task that finished meanwhile) raises the
connection error it really is instead of building a pool from the transport that is gone.
See docs/ARCHITECTURE.md ("The path through the workers").
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

# Celery's `broker_transport` setting takes this import path for redis:// URLs.
TRANSPORT = f"{__name__}:Transport"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection of this channel was closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel
