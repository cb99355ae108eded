"""SCIM protocol errors (RFC 7644 §3.12).

Every error the service can answer with is one of these classes. Each carries its HTTP status
and `scimType` as class attributes, so callers raise the *kind* of failure and the adapters
render one body shape for all of them. Any other exception escaping a request is a bug.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").
"""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A failure the client is told about, as a SCIM error body."""

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None
    default_detail: ClassVar[str] = "The request could not be processed."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    def to_body(self) -> dict[str, Any]:
        """Render the RFC 7644 §3.12 error response body."""
        body: dict[str, Any] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


class InvalidFilter(ScimError):
    scim_type = "invalidFilter"
    default_detail = "The specified filter syntax was invalid or the attribute is not supported."


class TooMany(ScimError):
    scim_type = "tooMany"
    default_detail = "The filter yields too many results to process."


class Uniqueness(ScimError):
    status = 409
    scim_type = "uniqueness"
    default_detail = "One or more attribute values are already in use or reserved."


class Mutability(ScimError):
    scim_type = "mutability"
    default_detail = "The attempted modification is not compatible with the attribute's mutability."


class InvalidSyntax(ScimError):
    scim_type = "invalidSyntax"
    default_detail = "The request body structure was invalid or did not conform to the schema."


class InvalidPath(ScimError):
    scim_type = "invalidPath"
    default_detail = "The path attribute was invalid or malformed."


class NoTarget(ScimError):
    scim_type = "noTarget"
    default_detail = (
        "The specified path did not yield an attribute or value that could be operated on."
    )


class InvalidValue(ScimError):
    scim_type = "invalidValue"
    default_detail = "A required value was missing, or the value specified was not compatible."


class InvalidVersion(ScimError):
    scim_type = "invalidVers"
    default_detail = "The specified SCIM protocol version is not supported."


class Sensitive(ScimError):
    status = 403
    scim_type = "sensitive"
    default_detail = "The request cannot be completed because it carries sensitive data in the URI."


class Unauthorized(ScimError):
    status = 401
    default_detail = "Authorization failure: a valid bearer token is required."


class Forbidden(ScimError):
    status = 403
    default_detail = "The operation is not permitted."


class NotFound(ScimError):
    status = 404
    default_detail = "The specified resource or endpoint does not exist."


class MethodNotAllowed(ScimError):
    status = 405
    default_detail = "The method is not supported on this endpoint."


class PreconditionFailed(ScimError):
    status = 412
    default_detail = "The resource has changed since the version the client supplied."


class NotAcceptable(ScimError):
    status = 406
    default_detail = "Responses are application/scim+json; the Accept header excludes it."


class RequestTimeout(ScimError):
    status = 408
    default_detail = "The request was not received in time."


class LengthRequired(ScimError):
    status = 411
    default_detail = "Send the request body with a Content-Length header."


class PayloadTooLarge(ScimError):
    status = 413
    default_detail = "The request body exceeds the configured size limit."


class UnsupportedMediaType(ScimError):
    status = 415
    default_detail = "Requests must be sent as application/scim+json or application/json."


class NotImplementedFeature(ScimError):
    status = 501
    default_detail = "The requested operation is not supported."


class Unavailable(ScimError):
    """Temporarily unable to serve (database unreachable, connection pool exhausted).

    `retry_after` (seconds) becomes the `Retry-After` header, so the IdP backs off instead of
    failing the job.
    """

    status = 503
    default_detail = "The service is temporarily unavailable; retry later."

    def __init__(self, detail: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TooManyRequests(Unavailable):
    """The tenant's or the service's backlog is over its limit (admission control)."""

    status = 429
    default_detail = "Too many pending changes; retry after the indicated delay."
