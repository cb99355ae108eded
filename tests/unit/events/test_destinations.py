"""The SSRF guard: which webhook destinations are refused, and why."""

from __future__ import annotations

import pytest

from scimflow.pipeline.events.destinations import (
    DestinationRefused,
    check_url,
    resolve_destination,
)

HINT = "set SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow private destinations"

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("[::1]", "loopback"),
    ("169.254.169.254", "link-local"),
    ("[fe80::1]", "link-local"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.10", "private"),
    ("[fc00::1]", "private"),
    ("[fd12:3456::1]", "private"),
    ("0.0.0.0", "unspecified"),
    ("[::]", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "reserved"),
    ("198.18.0.1", "reserved"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::127.0.0.1]", "loopback"),  # IPv4-compatible (deprecated), judged by its IPv4
    ("[::ffff:10.0.0.1]", "private"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("[64:ff9b::a9fe:a9fe]", "link-local"),
    ("[2002:7f00:1::]", "loopback"),
    ("localhost", "loopback"),
    ("api.localhost", "loopback"),
]
PUBLIC = ["93.184.216.34", "[2606:4700:4700::1111]", "8.8.8.8", "100.128.0.1", "172.32.0.1"]


@pytest.mark.parametrize(("host", "kind"), REFUSED)
def test_a_non_public_address_is_refused_with_the_reason_and_the_way_out(
    host: str, kind: str
) -> None:
    with pytest.raises(DestinationRefused) as refused:
        check_url(f"https://{host}/hooks", allow_private=False)

    message = str(refused.value)
    assert f"webhook destination {host.strip('[]')} is a" in message
    assert kind in message
    assert message.endswith(HINT)


def test_the_refusal_reads_as_documented() -> None:
    with pytest.raises(DestinationRefused) as refused:
        check_url("http://127.0.0.1:8080/hook", allow_private=False)

    assert str(refused.value) == f"webhook destination 127.0.0.1 is a loopback address; {HINT}"


@pytest.mark.parametrize(("host", "kind"), REFUSED)
def test_allow_private_accepts_them(host: str, kind: str) -> None:
    check_url(f"https://{host}/hooks", allow_private=True)


@pytest.mark.parametrize("host", PUBLIC)
def test_a_public_address_is_allowed(host: str) -> None:
    check_url(f"https://{host}:8443/hooks?tenant=acme", allow_private=False)


def test_a_name_is_left_to_resolution() -> None:
    check_url("https://hooks.example.com/scimflow", allow_private=False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/", "must use http or https, not 'ftp'"),
        ("file:///etc/passwd", "must use http or https"),
        ("hooks.example.com/path", "must use http or https, not 'none'"),
        ("https://user:pw@hooks.example.com/", "must not carry credentials"),
        ("https://token@hooks.example.com/", "must not carry credentials"),
        ("https:///path-only", "has no host"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
    ],
)
def test_malformed_destinations_are_refused_even_when_private_is_allowed(
    url: str, reason: str
) -> None:
    with pytest.raises(DestinationRefused, match=reason):
        check_url(url, allow_private=True)


def test_resolving_a_public_literal_returns_it() -> None:
    assert resolve_destination("93.184.216.34", 443, allow_private=False) == ["93.184.216.34"]
    assert resolve_destination("2606:4700:4700::1111", 443, allow_private=False) == [
        "2606:4700:4700::1111"
    ]


def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(DestinationRefused) as refused:
        resolve_destination("localhost", 443, allow_private=False)

    assert "webhook destination localhost resolves to" in str(refused.value)
    assert "loopback address" in str(refused.value)


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f.0.0.1", "127.1"])
def test_odd_spellings_of_loopback_are_judged_by_what_they_resolve_to(spelling: str) -> None:
    # Not IP literals to ipaddress, but the resolver reads them as 127.0.0.1.
    check_url(f"http://{spelling}/", allow_private=False)
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1, a loopback"):
        resolve_destination(spelling, 80, allow_private=False)


def test_allow_private_resolves_without_refusing() -> None:
    addresses = resolve_destination("localhost", 8080, allow_private=True)

    assert addresses
    assert set(addresses) <= {"127.0.0.1", "::1"}
