"""Which addresses a notification may be POSTed to, and how a name becomes addresses.

`ipaddress.is_global` alone is not the guard: NAT64 (64:ff9b::7f00:1) and 6to4 (2002:7f00:1::) forms of
127.0.0.1 count as global to it, and so does multicast. An address is refused when any special-purpose
registry of IANA (RFC 6890 and its successors, both families) lists it as not globally reachable, and
every form that carries an IPv4 address inside an IPv6 one (mapped, translated, compatible, NAT64, 6to4,
Teredo) is refused outright: a relay or translator on the path would turn it back into the IPv4 address,
which the IPv6 checks never saw. (An ERP is reached at its own address, not through a tunnel.)
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (tests pass their own: no test needs a name server)
Resolver = Callable[[str, int], list[str]]

# Carriers of an IPv4 address inside an IPv6 one, by name for the refusal's reason.
_EMBEDDING = tuple((ipaddress.ip_network(net), name) for net, name in (
    ("::ffff:0:0/96", "an IPv4-mapped address"),
    ("::ffff:0:0:0/96", "an IPv4-translated address"),
    ("::/96", "an IPv4-compatible address"),
    ("64:ff9b::/96", "a NAT64 address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("2002::/16", "a 6to4 address"),
    ("2001::/32", "a Teredo address"),
))
# Special-purpose blocks the ipaddress module still counts as global (Python 3.11).
_NOT_GLOBAL = tuple(ipaddress.ip_network(net) for net in (
    "192.0.0.0/24",      # IETF protocol assignments
    "192.88.99.0/24",    # the deprecated 6to4 relay anycast
    "fec0::/10",         # site-local (deprecated, still routed inside some sites)
    "3fff::/20",         # documentation (RFC 9637)
    "5f00::/16",         # SRv6 SIDs (RFC 9602)
))


def refusal(ip: Address) -> str | None:
    """Why a delivery must not go to this address, or None if it is an ordinary public one."""
    if ip.is_loopback or ip.is_unspecified:     # before the embeddings: :: and ::1 lie in ::/96
        return "not a public address"
    for net, name in _EMBEDDING:
        if ip.version == net.version and ip in net:
            return f"{name} (it carries an IPv4 address inside)"
    if (not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_private or any(ip.version == n.version and ip in n for n in _NOT_GLOBAL)):
        return "not a public address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system's resolver (a literal address resolves to itself)."""
    return [address[0] for *_, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
