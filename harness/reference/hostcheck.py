"""The client host check (SPEC section 2, ``+host`` policies).

The certificate must name the address the client connects *from*: an IP-ID
equal to the peer address, or a DNS-ID matching a forward-confirmed reverse
name of it. Matching is service_identity's RFC 6125 implementation (no CN
fallback; wildcards only as a whole left-most label).
"""

from __future__ import annotations

import ipaddress
import socket

import service_identity
from cryptography import x509
from service_identity.cryptography import (
    verify_certificate_hostname,
    verify_certificate_ip_address,
)


def normalise_ip(address: str) -> str:
    """Peer address as the check sees it: v4-mapped v6 as plain v4, no zone id."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def confirmed_names(ip: str) -> list[str]:
    """Reverse names of ``ip`` whose forward lookup yields ``ip`` again (FCrDNS)."""
    try:
        primary, aliases, _ = socket.gethostbyaddr(ip)
    except (OSError, UnicodeError):
        return []
    names = []
    for name in dict.fromkeys([primary, *aliases]):
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        if any(normalise_ip(info[4][0]) == ip for info in infos):
            names.append(name)
    return names


def host_mismatch(cert_der: bytes, peer_address: str) -> str | None:
    """None when the certificate names the peer; otherwise why it does not."""
    ip = normalise_ip(peer_address)
    cert = x509.load_der_x509_certificate(cert_der)
    try:
        verify_certificate_ip_address(cert, ip)
        return None
    except service_identity.VerificationError:
        pass
    except service_identity.CertificateError as exc:
        return f"client certificate unusable for a host check: {exc}"
    names = confirmed_names(ip)
    for name in names:
        try:
            verify_certificate_hostname(cert, name)
            return None
        except service_identity.VerificationError:
            continue
        except service_identity.CertificateError as exc:
            return f"client certificate unusable for a host check: {exc}"
    shown = ", ".join(names) if names else "none"
    return f"client certificate does not name peer {ip} (forward-confirmed names: {shown})"
