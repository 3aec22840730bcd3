"""Where a webhook may go: http(s) URLs of public addresses, unless private ones are allowed.

``check_target`` looks at a URL as written (when an endpoint is registered or saved);
``resolve_target`` resolves its host at delivery time, and the request goes to the vetted
address, so a name that later resolves to a private address is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import TYPE_CHECKING

from .errors import TargetRefused

if TYPE_CHECKING:
    import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public_address(address: IPAddress) -> bool:
    """Tell whether ``address`` is a public unicast address (IPv4-mapped ones unwrapped)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    special = address.is_private or address.is_loopback or address.is_link_local
    special = special or address.is_multicast or address.is_reserved or address.is_unspecified
    return address.is_global and not special


def parse_target(url: str) -> httpx.URL:
    """Return ``url`` parsed, if it is an absolute http(s) URL (``TargetRefused`` otherwise)."""
    import httpx  # imported by the first check: the models use this module, every process loads it

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise TargetRefused("webhook target is not a valid URL") from None
    if parsed.scheme not in DEFAULT_PORTS or not parsed.host:
        raise TargetRefused("webhook targets must be http or https URLs")
    return parsed


def check_target(url: str, allow_private: bool) -> None:
    """Refuse ``url`` unless it is http(s) and, written as an address or localhost, public.

    Host names are not resolved here: ``resolve_target`` checks them at each delivery.
    """
    host = parse_target(url).host.rstrip(".").lower()
    if allow_private:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise TargetRefused("webhook targets on localhost are not allowed")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not is_public_address(address):
        raise TargetRefused(f"webhook target {host} is not a public address")


async def resolve_target(url: httpx.URL, allow_private: bool) -> list[IPAddress]:
    """Return the addresses of ``url``'s host, refusing non-public ones unless allowed.

    Raises:
        TargetRefused: not http(s), or some address is not public.
        OSError: the name does not resolve (retryable).
    """
    if url.scheme not in DEFAULT_PORTS or not url.host:
        raise TargetRefused("webhook targets must be http or https URLs")
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(url.host)]
    except ValueError:
        port = url.port or DEFAULT_PORTS[url.scheme]
        infos = await asyncio.get_running_loop().getaddrinfo(
            url.host, port, type=socket.SOCK_STREAM
        )
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise TargetRefused("webhook target is not a public address")
    return addresses
