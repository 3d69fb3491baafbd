"""The one outbound-request policy of every source: which URLs the process may request at all.

A request is made only if its scheme is http(s), its host is one of the source's hosts, its
port is 80, 443 or a port of a configured URL, and every address the host resolves to is public
(not loopback, private, link-local, cloud metadata, multicast or otherwise reserved) unless the
configuration names that address explicitly (an IP literal in a configured URL or in
`allowed_hosts`, as the fixtures on 127.0.0.1 do) or lists the host as internal. Every refusal
is a sentence saying why, so a source records it instead of making the request.

The policy is plain data (`to_json` / `from_json`) so a crawl child process enforces the same
policy its parent built.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> addresses

DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud instance-metadata endpoints (AWS, GCP, Azure, OpenStack; AWS IPv6; Alibaba), named so a
# refusal says what was aimed at. All are non-public anyway.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


def normalise_host(host: str) -> str:
    """Lower case, no brackets around an IPv6 literal, no trailing dot (``Example.COM.``)."""
    return host.strip().strip("[]").rstrip(".").lower()


def ip_literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(normalise_host(host))
    except ValueError:
        return None


def internal_kind(address: IpAddress) -> str | None:
    """What kind of non-public address this is ("a loopback address" …), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return internal_kind(embedded)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved, non-public address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6), as the connection would see them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


@dataclass(frozen=True, kw_only=True)
class OutboundPolicy:
    """Where one source may send requests. Build it with `for_source`."""

    hosts: frozenset[str]
    ports: frozenset[int] = frozenset(DEFAULT_PORTS.values())
    subdomains: bool = False  # a subdomain of an allowed host is allowed too
    # Hosts (names or IP literals, matched as written) and networks ("10.1.0.0/16", matched by
    # address) the configuration allows although internal: IP literals of its URLs and hosts,
    # and whatever it lists as internal.
    internal_allowed: frozenset[str] = frozenset()

    @classmethod
    def for_source(
        cls,
        urls: Iterable[str],
        *,
        extra_hosts: Iterable[str] = (),
        internal_hosts: Iterable[str] = (),
        subdomains: bool = False,
    ) -> OutboundPolicy:
        """The policy of a source configured with `urls` (base URL, start pages, feeds) and the
        extra hosts its configuration allows. IP literals among them are explicitly allowed
        even when internal: whoever wrote ``http://127.0.0.1:8001`` meant it."""
        hosts: set[str] = set()
        ports = set(DEFAULT_PORTS.values())
        for url in urls:
            parts = urlsplit(url)
            if parts.hostname:
                hosts.add(normalise_host(parts.hostname))
            port = parts.port
            if port is not None:
                ports.add(port)
        hosts |= {normalise_host(h) for h in extra_hosts if h.strip()}
        internal = {h for h in hosts if ip_literal(h) is not None}
        internal |= {normalise_host(h) for h in internal_hosts if h.strip()}
        return cls(
            hosts=frozenset(hosts),
            ports=frozenset(ports),
            subdomains=subdomains,
            internal_allowed=frozenset(internal),
        )

    # -- checks ------------------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        host = normalise_host(host)
        if host in self.hosts:
            return True
        return (
            self.subdomains
            and ip_literal(host) is None
            and any(
                host.endswith("." + allowed)
                for allowed in self.hosts
                if ip_literal(allowed) is None
            )
        )

    def refusal(self, url: str) -> str | None:
        """Why `url` may not be requested, judged without DNS (scheme, host, port, a literal
        address); None if it may be, subject to `address_refusal` of what its host resolves to."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            return f"{url!r} is not a valid URL ({exc})"
        # Every request of a run asks, for a handful of origins: judged once per origin.
        return _origin_refusal(self, parts.scheme, parts.hostname, port)

    def _judge_origin(self, scheme: str, hostname: str | None, port: int | None) -> str | None:
        scheme = scheme.lower()
        if scheme not in DEFAULT_PORTS:
            return f"scheme {scheme or '(none)'!r} is not http or https"
        host = normalise_host(hostname or "")
        if not host:
            return "the URL has no host"
        if not self.host_allowed(host):
            return f"host {host!r} is not an allowed host of this source"
        port = port if port is not None else DEFAULT_PORTS[scheme]
        if port not in self.ports:
            allowed = ", ".join(str(p) for p in sorted(self.ports))
            return f"port {port} is not an allowed port of this source ({allowed})"
        literal = ip_literal(host)
        if literal is not None:
            return self.address_refusal(host, str(literal))
        return None

    def address_refusal(self, host: str, address: str) -> str | None:
        """Why a connection to `address` (what `host` resolved to) may not be made, or None."""
        host = normalise_host(host)
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{host!r} resolved to {address!r}, which is not an IP address"
        kind = internal_kind(ip)
        if kind is None or self._internal_allowed(host, ip):
            return None
        named = "is" if ip_literal(host) is not None else f"resolves to {ip},"
        return f"{host!r} {named} {kind}; not allowed unless the configuration names it"

    def checked_addresses(self, url: str, resolve: Resolver = system_resolver) -> list[str]:
        """The addresses `url`'s host resolves to, every one of them allowed; raises
        `Refused` with the reason otherwise (also when the name does not resolve)."""
        reason = self.refusal(url)
        if reason is not None:
            raise Refused(reason)
        parts = urlsplit(url)
        host = normalise_host(parts.hostname or "")
        port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
        try:
            addresses = list(resolve(host, port))
        except OSError as exc:
            raise Refused(f"{host!r} does not resolve ({exc})") from exc
        if not addresses:
            raise Refused(f"{host!r} resolves to no address")
        for address in addresses:
            reason = self.address_refusal(host, address)
            if reason is not None:
                raise Refused(reason)
        return addresses

    def _internal_allowed(self, host: str, ip: IpAddress) -> bool:
        # A bare name or address allows that host as written (``localhost`` reaching 127.0.0.1
        # is not allowed by ``127.0.0.1`` being configured); a network allows its addresses.
        for entry in self.internal_allowed:
            if entry == host:
                return True
            if "/" in entry and ip in ipaddress.ip_network(entry, strict=False):
                return True
        return False

    # -- across the process boundary ------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "hosts": sorted(self.hosts),
            "ports": sorted(self.ports),
            "subdomains": self.subdomains,
            "internal_allowed": sorted(self.internal_allowed),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutboundPolicy:
        return cls(
            hosts=frozenset(str(h) for h in data["hosts"]),
            ports=frozenset(int(p) for p in data["ports"]),
            subdomains=bool(data.get("subdomains", False)),
            internal_allowed=frozenset(str(h) for h in data.get("internal_allowed", ())),
        )


class Refused(Exception):
    """A request the outbound policy does not allow; the message says why."""


@functools.lru_cache(maxsize=4096)
def _origin_refusal(
    policy: OutboundPolicy, scheme: str, hostname: str | None, port: int | None
) -> str | None:
    """`OutboundPolicy.refusal` of an origin: a pure function of the (frozen, hashable) policy
    and the URL's scheme, host and port."""
    return policy._judge_origin(scheme, hostname, port)
