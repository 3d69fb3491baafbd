"""The security probes: hostile pages on loopback. Unlike the rest of the suite these tests
may connect to every loopback address (127.0.0.0/8), so a server on 127.0.0.2 playing an
internal host can count what reaches it; anything off loopback still fails at once."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from fixtures.probes import ProbeSite

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = str(address[0])
        try:
            loopback = ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise OSError(f"tests may not reach the network (tried {host!r})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides the suite's guard: all of 127.0.0.0/8, nothing else."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def internal() -> Iterator[ProbeSite]:
    """An "internal" host on 127.0.0.2 (a metadata service, an admin port): must see nothing."""
    with ProbeSite(
        {"/latest/meta-data/": ("text/plain", b"ami-id\ninstance-id\n")}, host="127.0.0.2"
    ) as server:
        yield server
