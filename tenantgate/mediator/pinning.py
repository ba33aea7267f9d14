"""DNS pinning for upstream calls: resolve a host once, judge every answer, connect to one of them.

``resolve()`` turns a URL's host into addresses (an IP literal is its own answer; a name is looked
up once, through a resolver that tests can replace). ``is_special()`` says whether an address is
one a key must not be sent to by default: loopback, private, link-local, shared (CGNAT),
multicast, unspecified, reserved, documentation, and IPv6 forms that embed such an IPv4 address
(mapped, NAT64, 6to4, Teredo). ``pinned()`` rewrites a URL to the chosen address while keeping the
name for the Host header and the TLS SNI/certificate check, so the HTTP stack never resolves the
name a second time: what was checked is what is connected to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import httpx

__all__ = ["Address", "PinnedURL", "ResolveError", "Resolver", "is_special", "pinned", "resolve"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""(host name, port) -> the addresses it resolves to, as text, in preference order."""

_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_MAX_ANSWERS: Final = 16


class ResolveError(Exception):
    """the upstream host name could not be resolved: check the connector's base URL and DNS."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


@dataclass(frozen=True, slots=True)
class PinnedURL:
    """A URL whose host is the checked address; the name travels in Host and SNI."""

    url: httpx.URL
    origin: httpx.URL
    address: Address
    host_header: str
    sni_hostname: str | None


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), run off the event loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


async def resolve(host: str, port: int, resolver: Resolver, timeout: float) -> list[Address]:
    """Every address ``host`` stands for right now (one lookup), duplicates removed, in order."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        async with asyncio.timeout(timeout):
            answers = await resolver(host, port)
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise ResolveError(f"could not resolve upstream host {host!r} ({reason})") from None
    addresses: list[Address] = []
    for answer in list(answers)[:_MAX_ANSWERS]:
        try:
            address = ipaddress.ip_address(answer.split("%", 1)[0])  # drop an IPv6 zone id
        except ValueError:
            raise ResolveError(f"the resolver answered {answer!r} for {host!r}") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ResolveError(f"upstream host {host!r} resolves to no address")
    return addresses


def is_special(address: Address) -> bool:
    """True for addresses that are not plain public unicast (see the module docstring)."""
    if address.is_multicast or not address.is_global:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_special(embedded)
    return False


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def pinned(url: httpx.URL, address: Address) -> PinnedURL:
    """``url`` aimed at ``address``, with the Host header and SNI name of the original host."""
    host_header = url.netloc.decode("ascii")
    sni = url.host if url.scheme == "https" else None
    return PinnedURL(url.copy_with(host=str(address)), url, address, host_header, sni)
