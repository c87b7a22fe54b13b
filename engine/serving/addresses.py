"""Which network addresses a vendor call may reach.

Three kinds of destination:

- `public`: anything on the Internet;
- `private`: loopback, RFC 1918, unique-local, shared (CGNAT) and other non-global addresses, and
  names that only mean something inside a network (`localhost`, `*.internal`, `*.local`). A vendor
  there is an on-premises appliance: the spec must say `http.private_network: true` and the operator
  must list the vendor in RELAY_PRIVATE_VENDORS, or use RELAY_UPSTREAM_<NAME>;
- `forbidden`: link-local addresses (169.254.0.0/16 holds the cloud metadata services that hand out
  the Lambda's own AWS credentials), the other known metadata addresses, unspecified, multicast
  and reserved ones. Never reached, whatever a spec or an operator says.

Used twice: by lint on the hosts a spec names literally, and by the transport on the address a
name resolves to just before it connects (so DNS cannot steer a call where lint would not let it).
"""
from __future__ import annotations

import ipaddress
import socket

PUBLIC, PRIVATE, FORBIDDEN = "public", "private", "forbidden"

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, Azure, GCP, OpenStack
    "169.254.170.2",    # ECS task metadata
    "fd00:ec2::254",    # AWS IMDS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",      # Oracle Cloud (legacy)
))
PRIVATE_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".corp")
PRIVATE_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
FORBIDDEN_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data",
                             "instance-data.ec2.internal", "metadata.azure.internal"})


def address_kind(address) -> str:
    """The kind of an IP address (an `ipaddress` object or its text)."""
    ip = ipaddress.ip_address(address) if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)) \
        else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (ip in METADATA_ADDRESSES or ip.is_link_local or ip.is_unspecified or ip.is_multicast
            or (ip.is_reserved and not ip.is_private)):
        return FORBIDDEN
    return PUBLIC if ip.is_global else PRIVATE


def literal_address(host: str):
    """The IP address a host text stands for without DNS (also the short and numeric IPv4 forms
    that resolvers accept: `127.1`, `2130706433`, `0x7f.0.0.1`), else None."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def host_kind(host: str) -> str:
    """The kind of a URL's host as written, for lint: literal addresses and well-known names."""
    host = host.lower().rstrip(".")
    address = literal_address(host)
    if address is not None:
        return address_kind(address)
    if host in FORBIDDEN_NAMES:
        return FORBIDDEN
    if host in PRIVATE_NAMES or host.endswith(PRIVATE_NAME_SUFFIXES) or "." not in host:
        return PRIVATE
    return PUBLIC
