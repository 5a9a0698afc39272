"""Key types (SPEC section 1): making a key of each, signing with it, reading one back.

cryptography makes every key and signature here. ``rsa-pss`` is an RSA key whose
certificate is signed with RSASSA-PSS (RFC 4055; ``CertificateBuilder.sign``'s
``rsa_padding``): cryptography cannot write a SubjectPublicKeyInfo restricted to PSS
(id-RSASSA-PSS), so the key itself is an ordinary RSA 2048 key, and a certificate of
that type is issued by an RSA issuer signing with PSS (certs_gen.build puts an RSA
intermediate under an issuer of another type). In TLS such a client signs its
CertificateVerify with rsa_pss_rsae_* (RFC 8446 section 4.2.3), as every RSA key does
under TLS 1.3.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

DEFAULT_KEY_TYPE = "ecdsa-p256"
KEY_TYPES = ("rsa-2048", "rsa-3072", "ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-pss")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_PSS_SIGNATURE_OID = "1.2.840.113549.1.1.10"


def generate_key(key_type: str) -> PrivateKey:
    """A new private key of ``key_type`` (one of KEY_TYPES); ValueError for another."""
    if key_type in ("rsa-2048", "rsa-pss"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type!r} (choose from: {', '.join(KEY_TYPES)})")


def pss() -> padding.PSS:
    """RSASSA-PSS with SHA-256, MGF1-SHA-256 and a salt as long as the digest (RFC 8446's
    rsa_pss_*_sha256 parameters, which OpenSSL requires of a PSS certificate signature)."""
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def sign_certificate(
    builder: x509.CertificateBuilder, key: PrivateKey, use_pss: bool = False
) -> x509.Certificate:
    """Sign with SHA-256 (ECDSA, RSA PKCS #1 v1.5 or PSS), or pure Ed25519 (no digest)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return builder.sign(key, None)
    if use_pss and isinstance(key, rsa.RSAPrivateKey):
        return builder.sign(key, hashes.SHA256(), rsa_padding=pss())
    return builder.sign(key, hashes.SHA256())


def sign_crl(
    builder: x509.CertificateRevocationListBuilder, key: PrivateKey, use_pss: bool = False
) -> x509.CertificateRevocationList:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return builder.sign(key, None)
    if use_pss and isinstance(key, rsa.RSAPrivateKey):
        return builder.sign(key, hashes.SHA256(), rsa_padding=pss())
    return builder.sign(key, hashes.SHA256())


def sign_bytes(data: bytes, key: PrivateKey, use_pss: bool = False) -> bytes:
    """The signature ``sign_certificate`` would put on a to-be-signed ``data``."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        pad = pss() if use_pss else padding.PKCS1v15()
        return key.sign(data, pad, hashes.SHA256())
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def key_type_of(cert: x509.Certificate) -> str:
    """The key type a certificate holds, read from it: its public key, and for RSA whether
    its own signature is RSASSA-PSS (the ``rsa-pss`` type's mark)."""
    key = cert.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(key.curve.name, "ecdsa")
    if isinstance(key, rsa.RSAPublicKey):
        if cert.signature_algorithm_oid.dotted_string == _PSS_SIGNATURE_OID:
            return "rsa-pss"
        return f"rsa-{key.key_size}"
    return "unknown"
