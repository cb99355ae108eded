"""Log lines (pipeline/logs.py): one JSON object per line carrying the ids known where the line
is written, from `extra` or from the bound context; and the worker's apply line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scimflow.pipeline import logs
from scimflow.pipeline.services.drain import AppliedEntry, DrainReport
from scimflow.pipeline.settings import LogFormat
from scimflow.workers.metrics import report_batch


def capture(name: str) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines to a buffer through the handler every process uses."""
    stream = io.StringIO()
    handler = logs.handler_for(LogFormat.JSON)
    handler.setStream(stream)  # type: ignore[attr-defined]
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    yield from capture("scimflow.test_logs")


@pytest.fixture
def worker_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    yield from capture("scimflow.worker")


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_time_level_logger_and_message(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("backlog at %d", 12)

    [line] = lines(stream)
    assert line["message"] == "backlog at 12"
    assert line["level"] == "WARNING" and line["logger"] == "scimflow.test_logs"
    assert datetime.fromisoformat(line["time"]).tzinfo is not None
    # Nothing bound, nothing named: no id fields at all rather than nulls.
    assert not set(line) & set(logs.CONTEXT_FIELDS)


def test_bound_ids_are_on_every_line_until_unbound(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with logs.bound(request_id="req-1", tenant="t-1"):
        token = logs.bind(task_id="task-9")
        logger.info("inside")
        logs.unbind(token)
        logger.info("task done")
    logger.info("outside")

    inside, done, outside = lines(stream)
    assert (inside["request_id"], inside["tenant"], inside["task_id"]) == ("req-1", "t-1",
                                                                           "task-9")
    assert "task_id" not in done and done["request_id"] == "req-1"
    assert "request_id" not in outside


def test_extra_fields_win_over_the_bound_context(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with logs.bound(request_id="the-task-request"):
        logger.info("applied", extra={"request_id": "the-entry-request", "latency_ms": 12.5})

    [line] = lines(stream)
    assert line["request_id"] == "the-entry-request" and line["latency_ms"] == 12.5


def test_an_exception_is_one_field_of_the_same_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")

    [line] = lines(stream)
    assert "ValueError: boom" in line["exception"]


def test_only_known_fields_can_be_bound() -> None:
    with pytest.raises(ValueError, match="colour"):
        logs.bind(colour="blue")


def test_the_text_format_shows_a_request_id_or_a_dash() -> None:
    stream = io.StringIO()
    handler = logs.handler_for(LogFormat.TEXT)
    handler.setStream(stream)  # type: ignore[attr-defined]
    record = logging.LogRecord("scimflow", logging.INFO, __file__, 1, "hello", None, None)
    handler.handle(record)
    with logs.bound(request_id="req-7"):
        handler.handle(logging.LogRecord("scimflow", logging.INFO, __file__, 1, "again", None,
                                         None))

    first, second = stream.getvalue().splitlines()
    assert "[request_id=-] hello" in first
    assert "[request_id=req-7] again" in second


def test_the_apply_line_names_the_request_that_acknowledged_the_entry(
    worker_log: tuple[logging.Logger, io.StringIO],
) -> None:
    acknowledged = datetime(2026, 1, 1, tzinfo=UTC)
    entry = AppliedEntry(seq=41, tenant_id="t-1", resource_id="u-1", resource_type="User",
                         kind="patch", request_id="req-from-api",
                         acknowledged_at=acknowledged,
                         applied_at=acknowledged + timedelta(milliseconds=250),
                         deprovisions=True)
    with logs.bound(task_id="task-3", request_id="the-task-has-none-of-its-own"):
        report_batch(DrainReport(resources=1, applied=1, applied_entries=[entry]))

    [line] = lines(worker_log[1])
    assert line["message"] == "applied patch User u-1 (journal entry 41)"
    assert (line["request_id"], line["tenant"], line["resource_id"], line["latency_ms"]) == (
        "req-from-api", "t-1", "u-1", 250.0)
    assert line["task_id"] == "task-3"
