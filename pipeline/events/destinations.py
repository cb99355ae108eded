"""Where webhooks may go: public http(s) destinations only, unless an operator allows private.

A webhook URL is chosen by whoever configures an endpoint, and the workers that send to it sit
inside the deployment's network; without a guard an endpoint could make them POST to the
metadata service (169.254.169.254), the database, or anything else only the inside can reach.
Two checks:

- `check_url`, when an endpoint is configured and before each attempt: scheme, no credentials,
  a host, and an address literal must be public;
- `resolve_destination`, when a connection opens: the name is resolved once and refused if ANY
  address it resolves to is not public. The transport then connects to exactly those
  addresses, so a name that resolves differently a moment later (DNS rebinding) changes nothing.

IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by that address.
`allow_private` (SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS) lifts the address checks, for
deployments whose applications live on the private network.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_PRIVATE_HINT = (
    "set SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow private destinations"
)
SCHEMES = ("http", "https")

# Ranges named explicitly so the refusal says what the address is; anything else that is not
# globally routable (documentation, benchmarking, reserved ranges) is refused as "reserved".
_IPV4_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "an unspecified"),
    ("127.0.0.0/8", "a loopback"),
    ("169.254.0.0/16", "a link-local"),
    ("10.0.0.0/8", "a private"),
    ("172.16.0.0/12", "a private"),
    ("192.168.0.0/16", "a private"),
    ("100.64.0.0/10", "a carrier-grade NAT (shared)"),
    ("224.0.0.0/4", "a multicast"),
    ("240.0.0.0/4", "a reserved"),
)
_IPV6_RANGES: tuple[tuple[str, str], ...] = (
    ("::/128", "an unspecified"),
    ("::1/128", "a loopback"),
    ("fe80::/10", "a link-local"),
    ("fc00::/7", "a private (unique local)"),
    ("fec0::/10", "a private (site-local)"),
    ("ff00::/8", "a multicast"),
)
# Deprecated IPv4-compatible addresses (::a.b.c.d, RFC 4291 §2.5.5.1): judged by their IPv4.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_KINDS = [
    (ipaddress.ip_network(network), kind) for network, kind in _IPV4_RANGES + _IPV6_RANGES
]


class DestinationRefused(ValueError):
    """A webhook destination the workers must not send to."""


def address_kind(address: IPAddress) -> str | None:
    """Why an address is not a public destination ("a loopback", …), or None when it is."""
    for network, kind in _KINDS:
        if address in network:
            return kind
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_kind(embedded)
    return None if address.is_global else "a reserved"


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL the workers must not send to (no DNS: names are checked when resolved)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: it raises on a bad one
    except ValueError as exc:
        raise DestinationRefused(f"webhook destination {url!r} is not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in SCHEMES:
        raise DestinationRefused(
            f"webhook destination {url!r} must use http or https, not {parts.scheme or 'none'!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused(
            "webhook destination must not carry credentials in the URL; "
            "the signature headers authenticate deliveries"
        )
    host = parts.hostname
    if not host:
        raise DestinationRefused(f"webhook destination {url!r} has no host")
    if not allow_private:
        _check_host_literal(host)


def _check_host_literal(host: str) -> None:
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: these names always mean the loopback interface.
        raise DestinationRefused(
            f"webhook destination {host} is a loopback address; {ALLOW_PRIVATE_HINT}"
        )
    address = _literal(host)
    if address is not None:
        _refuse_unless_public(host, address, resolved=False)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve_destination(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses to connect to for `host`, refused if any of them is not public.

    Resolution failures propagate as `socket.gaierror` (an error of the attempt, not a refusal).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for text in addresses:
            # A scoped IPv6 address ("fe80::1%eth0") is judged without its zone.
            _refuse_unless_public(host, ipaddress.ip_address(text.split("%")[0]), resolved=True)
    return addresses


def _refuse_unless_public(host: str, address: IPAddress, *, resolved: bool) -> None:
    kind = address_kind(address)
    if kind is None:
        return
    what = f"resolves to {address}, {kind}" if resolved else f"is {kind}"
    raise DestinationRefused(f"webhook destination {host} {what} address; {ALLOW_PRIVATE_HINT}")
