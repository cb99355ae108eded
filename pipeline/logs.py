"""One logging setup for every process (API, workers, beat, `scimflow serve`): plain text for
a terminal, or one JSON object per line (`SCIMFLOW_LOG_FORMAT=json`) for a log shipper.

A line carries the ids known where it is written: the request id, tenant, resource id and
Celery task id, and a latency. Each comes from the record's `extra` when the caller names it,
or else from the context the adapter bound (`bind`): the API binds the request id per request,
the workers the task id per task, so a line logged deep in the domain still names them.
See docs/ARCHITECTURE.md ("Configuration").
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from scimflow.pipeline.settings import LogFormat, Settings

# The fields a line may carry besides time, level, logger and message, in this order.
CONTEXT_FIELDS = ("request_id", "tenant", "resource_id", "task_id", "latency_ms")

_context: ContextVar[dict[str, Any] | None] = ContextVar("scimflow_log_context", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [request_id=%(request_id)s] %(message)s"


def bind(**fields: Any) -> Token[dict[str, Any] | None]:
    """Add fields to the current context's log lines; `unbind(token)` restores the previous."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"not a log context field: {', '.join(sorted(unknown))}")
    return _context.set((_context.get() or {}) | fields)


def unbind(token: Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def context_value(name: str) -> Any:
    """A bound field of the current context (None when unbound)."""
    return (_context.get() or {}).get(name)


class ContextFilter(logging.Filter):
    """Sets each context field on the record unless the caller's `extra` named it; the text
    format always shows a request id, "-" when there is none."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, context.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the known
    context fields, and the traceback of an exception as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


def handler_for(log_format: LogFormat) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    formatter = JsonFormatter() if log_format is LogFormat.JSON else _TextFormatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    return handler


def configure_logging(settings: Settings) -> None:
    """The root logger of this process, at `settings.log_level`, in `settings.log_format`."""
    logging.basicConfig(level=settings.log_level, handlers=[handler_for(settings.log_format)],
                        force=True)
    # Python's warnings (a library's deprecation, Celery's warning about root) become lines of
    # the same format instead of free text on stderr.
    logging.captureWarnings(True)
