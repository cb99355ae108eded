"""The discovery documents /ServiceProviderConfig, /ResourceTypes and /Schemas (RFC 7644 §4),
generated from the tenant's `SchemaRegistry` and a `Capabilities` value, never by hand. `base_url`
is the tenant's absolute SCIM base (e.g. "https://scim.example.com/scim/v2/t/acme"); every
`meta.location` is built from it, as RFC 7643 §3.1 makes it the URI of the resource itself.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scimflow.pipeline.scim.registry import SchemaRegistry
from scimflow.pipeline.scim.schema import ResourceType, Schema

SERVICE_PROVIDER_CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
# scimflow's extension of the ServiceProviderConfig: where its Security Event Tokens are
# delivered and verified. RFC 9967 §4 leaves "stream registration and configuration" out of
# scope, so these have no standard attribute.
EVENTS_EXTENSION_SCHEMA = "urn:scimflow:schemas:extension:events:1.0:ServiceProviderConfig"
POLL_SPEC_URI = "https://www.rfc-editor.org/info/rfc8936"
PUSH_SPEC_URI = "https://www.rfc-editor.org/info/rfc8935"


@dataclass(frozen=True)
class SecurityEvents:
    """Security Event Token support (RFC 9967): the event URIs scimflow's SETs carry, and the
    absolute URLs of the poll feed and of the JWKS that verifies them."""

    event_uris: tuple[str, ...]
    poll_url: str
    jwks_url: str
    # Webhook endpoints of the `set` format receive the same SETs by RFC 8935 push.
    push: bool = True


@dataclass(frozen=True)
class Capabilities:
    """What this deployment implements, as advertised by /ServiceProviderConfig (RFC 7643 §5)."""

    patch: bool = True
    bulk: bool = False
    bulk_max_operations: int = 0
    bulk_max_payload_size: int = 0
    filter: bool = True
    filter_max_results: int = 1000
    change_password: bool = True
    sort: bool = True
    etag: bool = True
    documentation_uri: str | None = None
    security_events: SecurityEvents | None = None

    def __post_init__(self) -> None:
        # Advertising bulk with zero limits, or filtering that returns nothing, would tell
        # clients something the service cannot do; refuse such a configuration at startup.
        limits = (self.bulk_max_operations, self.bulk_max_payload_size, self.filter_max_results)
        if any(limit < 0 for limit in limits):
            raise ValueError("Capability limits cannot be negative.")
        if self.bulk and not (self.bulk_max_operations and self.bulk_max_payload_size):
            raise ValueError("Bulk support needs positive maxOperations and maxPayloadSize.")
        if self.filter and not self.filter_max_results:
            raise ValueError("Filter support needs a positive maxResults.")


def service_provider_config(caps: Capabilities, base_url: str) -> dict[str, Any]:
    """The ServiceProviderConfig resource (RFC 7643 §5, example §8.5; RFC 7644 §4)."""
    doc: dict[str, Any] = {"schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA]}
    if caps.documentation_uri:
        doc["documentationUri"] = caps.documentation_uri
    doc |= {
        "patch": {"supported": caps.patch},
        "bulk": {
            "supported": caps.bulk,
            "maxOperations": caps.bulk_max_operations,
            "maxPayloadSize": caps.bulk_max_payload_size,
        },
        "filter": {"supported": caps.filter, "maxResults": caps.filter_max_results},
        "changePassword": {"supported": caps.change_password},
        "sort": {"supported": caps.sort},
        "etag": {"supported": caps.etag},
        "authenticationSchemes": [_bearer_token_scheme(caps)],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{_base(base_url)}/ServiceProviderConfig",
        },
    }
    if caps.security_events is not None:
        doc["schemas"].append(EVENTS_EXTENSION_SCHEMA)
        doc |= _security_events(caps.security_events)
    return doc


def _security_events(events: SecurityEvents) -> dict[str, Any]:
    """RFC 9967 §4 `securityEvents`, and scimflow's extension saying how to receive them.

    `asyncRequest` is "none": every SCIM request is answered when it is acknowledged, never
    with RFC 9967's `202 Accepted`, whatever `Prefer: respond-async` says.
    """
    return {
        "securityEvents": {"asyncRequest": "none", "eventUris": list(events.event_uris)},
        EVENTS_EXTENSION_SCHEMA: {
            "poll": {"supported": True, "endpoint": events.poll_url, "specUri": POLL_SPEC_URI},
            "push": {"supported": events.push, "specUri": PUSH_SPEC_URI},
            "jwksUri": events.jwks_url,
        },
    }


def _bearer_token_scheme(caps: Capabilities) -> dict[str, Any]:
    """The one scheme scimflow accepts: an OAuth 2.0 bearer token (RFC 6750; RFC 7644 §2)."""
    scheme: dict[str, Any] = {
        "type": "oauthbearertoken",
        "name": "OAuth Bearer Token",
        "description": "Authentication scheme using the OAuth Bearer Token Standard",
        "specUri": "https://www.rfc-editor.org/info/rfc6750",
        "primary": True,
    }
    if caps.documentation_uri:
        scheme["documentationUri"] = caps.documentation_uri
    return scheme


def resource_types_list(registry: SchemaRegistry, base_url: str) -> dict[str, Any]:
    """GET /ResourceTypes: every resource type, as a ListResponse (RFC 7644 §4, §3.4.2)."""
    base = _base(base_url)
    return _list_response([_resource_type(rt, base) for rt in registry.resource_types])


def resource_type_doc(registry: SchemaRegistry, name: str, base_url: str) -> dict[str, Any]:
    """GET /ResourceTypes/<name> (RFC 7643 §6); raises NotFound for an unknown name."""
    return _resource_type(registry.resource_type(name), _base(base_url))


def schemas_list(registry: SchemaRegistry, base_url: str) -> dict[str, Any]:
    """GET /Schemas: every schema in use, core schemas first, as a ListResponse (RFC 7644 §4)."""
    base = _base(base_url)
    return _list_response([_schema(schema, base) for schema in registry.schemas()])


def schema_doc(registry: SchemaRegistry, urn: str, base_url: str) -> dict[str, Any]:
    """GET /Schemas/<urn> (RFC 7643 §7); raises NotFound for an unknown URN."""
    return _schema(registry.schema(urn), _base(base_url))


def _resource_type(resource_type: ResourceType, base: str) -> dict[str, Any]:
    return resource_type.to_dict(location=f"{base}/ResourceTypes/{resource_type.name}")


def _schema(schema: Schema, base: str) -> dict[str, Any]:
    return schema.to_dict(location=f"{base}/Schemas/{schema.id}")


def _list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """An unpaginated ListResponse (RFC 7644 §3.4.2); discovery lists are small and complete."""
    return {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": len(resources),
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "Resources": resources,
    }


def _base(base_url: str) -> str:
    """The SCIM base without a trailing slash; it must be absolute, as locations are (§3.1)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"The SCIM base URL must be an absolute http(s) URL, got {base_url!r}.")
    return base_url.rstrip("/")
