"""The outbound-request policy on its own: hosts, ports, schemes and internal addresses."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from sources.mac_bulletins import MacBulletinsOptions
from sources.outbound import OutboundPolicy, Refused, internal_kind
from sources.payer_policies import PayerPoliciesOptions

PUBLIC = "93.184.216.34"


def _resolving(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("100.64.0.1", "non-public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
    ],
)
def test_internal_addresses_are_named(address: str, kind: str) -> None:
    import ipaddress

    found = internal_kind(ipaddress.ip_address(address))
    assert found is not None and kind in found


def test_public_address_is_not_internal() -> None:
    import ipaddress

    assert internal_kind(ipaddress.ip_address(PUBLIC)) is None


def test_host_port_and_scheme_are_checked_without_dns() -> None:
    policy = OutboundPolicy.for_source(["https://www.payer.example/policies/"], subdomains=True)
    assert policy.refusal("https://www.payer.example/policies/a.pdf") is None
    assert policy.refusal("http://static.www.payer.example/a.pdf") is None  # subdomain
    assert "not an allowed host" in (policy.refusal("https://evil.example/") or "")
    assert "not an allowed host" in (policy.refusal("http://169.254.169.254/latest/") or "")
    assert "not an allowed host" in (policy.refusal("http://2130706433/") or "")  # 127.0.0.1
    assert "port 6379" in (policy.refusal("http://www.payer.example:6379/") or "")
    assert "scheme 'file'" in (policy.refusal("file:///etc/passwd") or "")
    assert "scheme 'gopher'" in (policy.refusal("gopher://www.payer.example/") or "")


def test_a_public_name_resolving_inside_is_refused_after_dns() -> None:
    policy = OutboundPolicy.for_source(["https://www.payer.example/"])
    url = "https://www.payer.example/policies/a.pdf"
    assert policy.checked_addresses(url, _resolving(PUBLIC)) == [PUBLIC]
    for inside in ("10.0.0.5", "169.254.169.254", "127.0.0.1", "::1"):
        with pytest.raises(Refused, match=f"resolves to {inside}"):
            policy.checked_addresses(url, _resolving(PUBLIC, inside))  # any one is enough


def test_only_what_the_configuration_names_is_allowed_inside() -> None:
    """An IP literal in a configured URL is explicit; another name reaching it is not."""
    policy = OutboundPolicy.for_source(["http://127.0.0.1:8001/"], extra_hosts=["localhost"])
    assert policy.checked_addresses("http://127.0.0.1:8001/x") == ["127.0.0.1"]
    with pytest.raises(Refused, match=r"'localhost' resolves to 127\.0\.0\.1, a loopback"):
        policy.checked_addresses("http://localhost:8001/x")
    assert "not an allowed host" in (policy.refusal("http://127.0.0.2:8001/") or "")
    networks = OutboundPolicy.for_source(
        ["https://mirror.corp.example/"], internal_hosts=["10.1.0.0/16"]
    )
    assert networks.checked_addresses("https://mirror.corp.example/", _resolving("10.1.2.3"))
    with pytest.raises(Refused):
        networks.checked_addresses("https://mirror.corp.example/", _resolving("10.2.0.1"))


def test_the_policy_crosses_to_the_crawl_child_unchanged() -> None:
    policy = OutboundPolicy.for_source(["http://127.0.0.1:9/"], extra_hosts=["b.example"])
    assert OutboundPolicy.from_json(policy.to_json()) == policy


def test_sources_build_their_policy_from_their_configuration() -> None:
    payer = PayerPoliciesOptions(
        payer="P", start_urls=("https://www.payer.example/index",), allowed_hosts=("cdn.example",)
    ).outbound
    assert payer.hosts == {"www.payer.example", "cdn.example"} and payer.subdomains
    assert not payer.internal_allowed
    mac = MacBulletinsOptions(mac="M", feed_url="http://127.0.0.1:8123/rss").outbound
    assert mac.hosts == {"127.0.0.1"} and 8123 in mac.ports and not mac.subdomains
    assert mac.internal_allowed == {"127.0.0.1"}


def test_refusals_are_judged_per_policy_and_origin() -> None:
    """`refusal` is cached per (policy, scheme, host, port): two policies asked about the same
    origin keep their own answers, and a cached answer is the one judged afresh."""
    narrow = OutboundPolicy.for_source(["http://127.0.0.1:8123/index.html"])
    wide = OutboundPolicy.for_source(
        ["http://127.0.0.1:8123/index.html"], extra_hosts=["payer.example"]
    )
    urls = [
        "http://127.0.0.1:8123/a",
        "http://127.0.0.1:8124/a",
        "https://payer.example/policy.pdf",
        "http://PAYER.example:80/x",
        "ftp://127.0.0.1:8123/",
        "http://169.254.169.254/latest/meta-data/",
        "http:///no-host",
    ]
    for _ in range(2):  # the second round answers from the cache
        for url in urls:
            for policy in (narrow, wide):
                parts = urlsplit(url)
                fresh = policy._judge_origin(parts.scheme, parts.hostname, parts.port)
                assert policy.refusal(url) == fresh
    assert narrow.refusal("https://payer.example/policy.pdf") is not None
    assert wide.refusal("https://payer.example/policy.pdf") is None
    assert "not a valid URL" in (narrow.refusal("http://127.0.0.1:99999/") or "")
