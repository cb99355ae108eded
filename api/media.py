"""Request and response bodies: SCIM JSON in, SCIM JSON out, bounded in size.

RFC 7644 §3.1 names `application/scim+json`; plain `application/json` is accepted too because
some clients send it (§3.8 lets servers be lenient). Every response is
`application/scim+json; charset=utf-8`, which is what Okta sends and expects back.
See docs/ARCHITECTURE.md ("The HTTP edge").
"""

from __future__ import annotations

import io
import json
from typing import Any

import falcon
from falcon.media import BaseHandler, Handlers
from falcon.typing import ReadableIO

from scimflow.api.services import WsgiApp
from scimflow.pipeline.errors import (
    InvalidSyntax,
    LengthRequired,
    PayloadTooLarge,
    RequestTimeout,
    ScimError,
    UnsupportedMediaType,
)

SCIM_MEDIA_TYPE = "application/scim+json"
RESPONSE_CONTENT_TYPE = "application/scim+json; charset=utf-8"
ACCEPTED_MEDIA_TYPES = frozenset({SCIM_MEDIA_TYPE, falcon.MEDIA_JSON})
UTF8_CHARSETS = frozenset({"utf-8", "utf8"})


class ScimJSONHandler(BaseHandler):
    """JSON (de)serialisation with the body-size limit and SCIM errors for bad input."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def deserialize(
        self, stream: ReadableIO, content_type: str | None, content_length: int | None
    ) -> object:
        return parse_json(read_bounded(stream, content_length, self.max_body_bytes))

    def serialize(self, media: object, content_type: str) -> bytes:
        return json.dumps(media, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def install_media(app: WsgiApp, max_body_bytes: int) -> None:
    """Make SCIM JSON the only request media type and the response media type."""
    handler = ScimJSONHandler(max_body_bytes)
    # Replacing (not extending) the defaults drops the form and multipart parsers: a SCIM
    # service has no use for them, and fewer parsers means fewer ways in.
    app.req_options.media_handlers = Handlers(
        {SCIM_MEDIA_TYPE: handler, falcon.MEDIA_JSON: handler}
    )
    app.req_options.default_media_type = SCIM_MEDIA_TYPE
    app.resp_options.media_handlers = Handlers(
        {RESPONSE_CONTENT_TYPE: handler, SCIM_MEDIA_TYPE: handler, falcon.MEDIA_JSON: handler}
    )
    app.resp_options.default_media_type = RESPONSE_CONTENT_TYPE


def read_json(req: falcon.Request, max_body_bytes: int) -> Any:
    """The request body as JSON: 415 for another media type, 413 over the limit, 400 if malformed.

    Used instead of `req.get_media()` because Falcon's bounded stream reads nothing when a
    chunked request has no Content-Length; here such a body is read, still bounded, when the
    server marks where it ends.
    """
    require_json_content_type(req.content_type)
    raw = read_bounded(_body_stream(req), req.content_length, max_body_bytes)
    # The connection can serve another request (middleware.ConnectionReuseMiddleware).
    req.context.body_read = True
    return parse_json(raw)


def require_json_content_type(content_type: str | None) -> None:
    # A missing Content-Type is read as JSON (Falcon's default too): refusing it helps no one,
    # and a body that is not JSON still fails as invalidSyntax.
    if content_type is None:
        return
    media_type, params = falcon.parse_header(content_type)
    charset = params.get("charset", "utf-8").lower()
    if media_type.lower() not in ACCEPTED_MEDIA_TYPES or charset not in UTF8_CHARSETS:
        raise UnsupportedMediaType()


def read_bounded(stream: ReadableIO, content_length: int | None, limit: int) -> bytes:
    """Read the whole body, refusing one over `limit` bytes before and while reading it."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    received = 0
    while received <= limit:
        chunk = _read_framed(stream, limit + 1 - received)
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    if received > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    return b"".join(chunks)


def _read_framed(stream: ReadableIO, size: int) -> bytes:
    """One read of the body as the server frames it; a framing defect is the client's.

    The WSGI server raises its own exception classes for a body it cannot delimit (gunicorn:
    a malformed chunk size or a missing chunk terminator); naming them would tie this module to
    one server, so any exception the input stream raises on read is a malformed body, except a
    read timeout (the client stalled). A body cut short by the client going away is one too:
    the answer reaches no one, and it is not worth a logged 500.
    """
    try:
        return stream.read(size)
    except TimeoutError:
        raise RequestTimeout("The request body stalled; it was not received in time.") from None
    except ScimError:
        raise
    except Exception as ex:
        raise InvalidSyntax(f"The request body is malformed or incomplete: {ex}") from None


def parse_json(raw: bytes) -> Any:
    """Strict JSON (RFC 8259: UTF-8, no NaN or Infinity); any defect is 400 invalidSyntax."""
    if not raw.strip():
        raise InvalidSyntax("The request body is empty.")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise InvalidSyntax("The request body is not UTF-8.") from None
    except ValueError as ex:
        raise InvalidSyntax(f"The request body is not valid JSON: {ex}.") from None
    except RecursionError:
        raise InvalidSyntax("The request body nests too deeply.") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _body_stream(req: falcon.Request) -> ReadableIO:
    if req.content_length is not None:
        return req.bounded_stream
    # Without Content-Length (chunked transfer), reading is only safe when the WSGI server
    # says the input ends where the body does (PEP 3333 `wsgi.input_terminated`: gunicorn
    # does). Otherwise (uWSGI) a read could block forever: a chunked body gets 411, so the
    # client can resend it with a length; a request without either has no body.
    if req.env.get("wsgi.input_terminated"):
        return req.stream
    if "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
        raise LengthRequired()
    return io.BytesIO()
