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
from service_identity.hazmat import (
    DNS_ID,
    CertificatePattern,
    DNSPattern,
    IPAddress_ID,
    IPAddressPattern,
    ServiceID,
    verify_service_identity,
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


def client_patterns(cert: x509.Certificate) -> tuple[list[CertificatePattern], list[str]]:
    """The certificate's DNS-IDs and IP-IDs as service_identity patterns, one by one.

    service_identity's ``extract_patterns`` refuses the whole certificate when
    any one DNS-ID is a wildcard it deems too broad (``*.localhost``: fewer than
    three labels). SPEC section 2 judges each identity on its own (an IP-ID
    that equals the peer is enough), so unusable DNS-IDs are set aside here,
    with the reason kept for the log, and never match.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], ["no subjectAltName (the Common Name is never used)"]
    patterns: list[CertificatePattern] = []
    unusable: list[str] = []
    for dns in san.get_values_for_type(x509.DNSName):
        try:
            patterns.append(DNSPattern.from_bytes(dns.encode("utf-8")))
        except service_identity.CertificateError as exc:
            unusable.append(str(exc))
    patterns.extend(IPAddressPattern(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return patterns, unusable


def host_mismatch(cert_der: bytes, peer_address: str) -> str | None:
    """None when the certificate names the peer; otherwise why it does not."""
    ip = normalise_ip(peer_address)
    patterns, unusable = client_patterns(x509.load_der_x509_certificate(cert_der))
    names = confirmed_names(ip)
    candidates: list[ServiceID] = [IPAddress_ID(ip)]
    for name in names:
        try:
            candidates.append(DNS_ID(name))
        except ValueError:
            continue  # not a usable host name (service_identity says why)
    for service_id in candidates if patterns else []:
        try:
            verify_service_identity(patterns, obligatory_ids=[service_id], optional_ids=[])
            return None
        except service_identity.VerificationError:
            continue
    shown = ", ".join(names) if names else "none"
    why = f"client certificate does not name peer {ip} (forward-confirmed names: {shown})"
    return f"{why}; unusable: {'; '.join(unusable)}" if unusable else why
