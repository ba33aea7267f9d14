"""The egress policy: which upstream destinations and addresses a customer's key may be sent to.

Mediator configuration only (environment variables, see mediator/upstream.py), never database
data: whoever can edit a connector's ``base_url`` cannot point decrypted keys somewhere new.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from tenantgate.mediator.pinning import Address, is_special
from tenantgate.mediator.upstream_errors import EgressDeniedError

__all__ = ["ENV_EGRESS_ADDRESSES", "ENV_EGRESS_ALLOW", "EgressPolicy", "EgressRule"]

ENV_EGRESS_ALLOW: Final = "TENANTGATE_EGRESS_ALLOW"
ENV_EGRESS_ADDRESSES: Final = "TENANTGATE_EGRESS_ALLOW_ADDRESSES"
DEFAULT_PORTS: Final = {"http": 80, "https": 443}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class EgressRule:
    """One allowed destination."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """The destinations upstream calls may reach; everything else is refused before connecting."""

    rules: frozenset[EgressRule]
    special_ok: frozenset[Network] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, spec: str, addresses: str = "") -> EgressPolicy:
        """Parse ``scheme://host[:port]`` entries and special ``addresses``, comma-separated."""
        rules = set()
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            parsed = urllib.parse.urlsplit(entry)
            if parsed.scheme not in DEFAULT_PORTS or not parsed.hostname:
                raise ValueError(f"egress entry {entry!r} must look like https://host[:port]")
            if parsed.path not in ("", "/") or parsed.query or parsed.username:
                raise ValueError(f"egress entry {entry!r} must hold only scheme, host and port")
            port = parsed.port or DEFAULT_PORTS[parsed.scheme]
            rules.add(EgressRule(parsed.scheme, parsed.hostname.lower(), port))
        networks: set[Network] = set()
        for entry in filter(None, (part.strip() for part in addresses.split(","))):
            try:
                networks.add(ipaddress.ip_network(entry, strict=True))
            except ValueError:
                raise ValueError(
                    f"egress address {entry!r} must be an address or a network like 10.0.0.0/8"
                ) from None
        return cls(frozenset(rules), frozenset(networks))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EgressPolicy:
        """The policy in TENANTGATE_EGRESS_ALLOW(_ADDRESSES) (empty: every call is refused)."""
        env = os.environ if environ is None else environ
        return cls.parse(env.get(ENV_EGRESS_ALLOW, ""), env.get(ENV_EGRESS_ADDRESSES, ""))

    def rule_for(self, url: httpx.URL) -> EgressRule:
        """The allowed rule matching the URL's (scheme, host, port), else EgressDeniedError."""
        scheme = url.scheme.lower()
        port = url.port or DEFAULT_PORTS.get(scheme, 0)
        rule = EgressRule(scheme, url.host.lower(), port)
        if rule not in self.rules:
            raise EgressDeniedError(
                f"egress to {str(rule)!r} is not allowed: add it to {ENV_EGRESS_ALLOW} "
                "if this connector should reach it"
            )
        return rule

    def check(self, url: httpx.URL) -> None:
        """Raise EgressDeniedError unless the URL's (scheme, host, port) is allowed."""
        self.rule_for(url)

    def check_address(self, rule: EgressRule, address: Address) -> None:
        """Raise EgressDeniedError when ``address`` is special and nothing allows it explicitly."""
        if not is_special(address) or _literal(rule.host) == address:
            return  # public, or the allowlist entry is this very address
        if any(address in network for network in self.special_ok):
            return
        raise EgressDeniedError(
            f"upstream host {rule.host!r} resolves to {str(address)!r}, a loopback, private or "
            f"otherwise special address: list it in {ENV_EGRESS_ADDRESSES} if this is intended"
        )


def _literal(host: str) -> Address | None:
    """The address an allowlist host names when it is an IP literal, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
