"""The request-buffering gunicorn worker's pure parts: head framing, errors as SCIM JSON."""

from __future__ import annotations

import json

import pytest
from gunicorn.http import errors as parse_errors

from scimflow.api.buffered_worker import body_framing, classify_server_error, error_response

LIMIT = 1000


def head(*fields: str) -> bytes:
    return ("POST /scim/v2/Users HTTP/1.1\r\n" + "".join(f"{f}\r\n" for f in fields)
            + "\r\n").encode()


def test_a_content_length_within_the_limit_is_buffered() -> None:
    framing = body_framing(head("Host: x", "content-length:  42 "), LIMIT)
    assert (framing.length, framing.streamed, framing.expects_continue) == (42, False, False)


def test_no_length_means_no_body() -> None:
    assert body_framing(head("Host: x"), LIMIT).length == 0


@pytest.mark.parametrize("fields", [
    ("Transfer-Encoding: chunked",), ("Content-Length: 1001",), ("Content-Length: -1",),
    ("Content-Length: 1", "Content-Length: 2"), ("Content-Length: 0x10",),
])
def test_anything_else_goes_to_a_thread_for_gunicorn_or_the_app_to_answer(
    fields: tuple[str, ...],
) -> None:
    assert body_framing(head("Host: x", *fields), LIMIT).streamed


def test_an_expectation_is_noticed() -> None:
    framing = body_framing(head("Expect: 100-Continue", "Content-Length: 5"), LIMIT)
    assert framing.expects_continue


@pytest.mark.parametrize(("error", "status"), [
    (parse_errors.LimitRequestLine(5000, 4094), 414),
    (parse_errors.LimitRequestHeaders("too many"), 431),
    (parse_errors.InvalidRequestLine("GARBAGE"), 400),
    (parse_errors.InvalidHeaderName("Bad Name"), 400),
    (parse_errors.InvalidChunkSize(b"zz"), 400),
    (parse_errors.InvalidResponseHeader("x"), 500),
    (RuntimeError("secret internals"), 500),
])
def test_server_errors_are_classified(error: BaseException, status: int) -> None:
    code, detail = classify_server_error(error)
    assert code == status
    if status == 500:
        assert "secret" not in detail


def test_an_error_response_is_a_closing_scim_json_response() -> None:
    raw = error_response(431, "too large")
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    assert head_bytes.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Connection: close" in head_bytes
    assert b"Content-Type: application/scim+json; charset=utf-8" in head_bytes
    assert f"Content-Length: {len(body)}".encode() in head_bytes
    assert json.loads(body) == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                                "status": "431", "detail": "too large"}
