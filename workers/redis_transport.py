"""kombu's Redis transport, with a worker that survives its broker being restarted.

kombu 5.7 ends a worker whose Redis connection drops while it holds unacknowledged messages:
the consumer closes the broken connection, which tears the transport down, and what follows
on the old channel (putting the unacknowledged messages back, acknowledging a task that
finished meanwhile) builds a new connection pool from the transport that is gone. The
AttributeError escapes Celery's error handling ("Unrecoverable error") and the worker exits.

Here such a channel raises the connection error it really is, which kombu and Celery already
handle (the close goes on, the ack is logged as failed, the consumer reconnects). Nothing
depends on those messages: they are only doorbells, their work stays pending in the journal,
and the sweeper re-rings it (a Redis that restarted empty has lost them anyway).
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
