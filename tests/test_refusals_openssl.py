"""matrix.refusals' table, measured against the OpenSSL in use — without the reference server.

Each server here is a few lines of stdlib ``ssl`` or pyOpenSSL (the two carry
different OpenSSL builds: the system's, and the one in cryptography's wheel),
configured the plain way — verify the client against one CA, CRL checking for
the revoked case — and fed one certificate with one verification failure. The
certificates are built here with cryptography so that every cause of the table
has its credential (not yet valid, server-only EKU, revoked with a CRL). The
matrix client must then observe exactly the refusal ``predict_refusal`` gives.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import selectors
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL, crypto

from harness.client import OK, REJECTED, TLSClient
from matrix import refusals
from matrix.refusals import predict_refusal

WAIT = 5.0
NOW = dt.datetime.now(dt.timezone.utc)
DAY = dt.timedelta(days=1)

# cause -> the credential that fails verification for that reason alone
CREDENTIALS = {
    refusals.NO_CERTIFICATE: None,
    refusals.UNTRUSTED_ISSUER: "wrong-ca",
    refusals.EXPIRED: "expired",
    refusals.NOT_YET_VALID: "not-yet-valid",
    refusals.BAD_EKU: "server-eku",
    refusals.REVOKED: "revoked",
    # issued by a CA whose basicConstraints is not critical: only a strict verifier minds
    refusals.NONCONFORMING: "legacy",
}
BACKENDS = ("stdlib", "pyopenssl")
VERSIONS = ("1.2", "1.3")


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class _Issuer:
    def __init__(self, name: str, critical_constraints: bool = True) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - 10 * DAY)
            .not_valid_after(NOW + 100 * DAY)
            .add_extension(
                x509.BasicConstraints(ca=True, path_length=None), critical=critical_constraints
            )
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        directory: Path,
        name: str,
        *,
        eku: tuple = (ExtendedKeyUsageOID.CLIENT_AUTH,),
        valid: tuple[dt.datetime, dt.datetime] = (NOW - DAY, NOW + 30 * DAY),
        san: list[x509.GeneralName] | None = None,
    ) -> tuple[Path, x509.Certificate]:
        """key + certificate in one PEM file (what TLSClient takes); and the certificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        path = directory / f"{name}.pem"
        _write_key(path, key)
        with path.open("ab") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        return path, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A client CA with a CRL, a server certificate, and one client per failure.

    The legacy CA (non-critical basicConstraints) and its client (no key
    identifiers) are what a strict verifier (X509_STRICT) refuses; the other
    certificates lack key identifiers too, so the strict flag is set only for
    the ``nonconforming`` cause.
    """
    d = tmp_path_factory.mktemp("refusal-pki")
    ca, other = _Issuer("refusals test CA"), _Issuer("refusals other CA")
    legacy = _Issuer("refusals legacy CA", critical_constraints=False)  # RFC 5280 s. 4.2.1.9
    files: dict[str, Path] = {}
    files["ca"] = d / "ca.pem"
    files["ca"].write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    # what the servers trust: the test CA, and the legacy CA that only a lenient verifier accepts
    files["client-cas"] = d / "client-cas.pem"
    pems = (
        ca.cert.public_bytes(serialization.Encoding.PEM),
        legacy.cert.public_bytes(serialization.Encoding.PEM),
    )
    files["client-cas"].write_bytes(b"".join(pems))
    files["legacy"], _ = legacy.issue(d, "legacy")
    files["server"], _ = ca.issue(
        d,
        "server",
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
        san=[x509.DNSName("localhost")],
    )
    files["good"], _ = ca.issue(d, "good")
    files["wrong-ca"], _ = other.issue(d, "wrong-ca")
    files["expired"], _ = ca.issue(d, "expired", valid=(NOW - 30 * DAY, NOW - DAY))
    files["not-yet-valid"], _ = ca.issue(d, "not-yet-valid", valid=(NOW + DAY, NOW + 30 * DAY))
    files["server-eku"], _ = ca.issue(d, "server-eku", eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    files["revoked"], revoked = ca.issue(d, "revoked")
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.name)
        .last_update(NOW - DAY)
        .next_update(NOW + 30 * DAY)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revoked.serial_number)
            .revocation_date(NOW - DAY)
            .build()
        )
        .sign(ca.key, hashes.SHA256())
    )
    files["crl"] = d / "ca.crl.pem"
    files["crl"].write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return files


_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


def _linger(sock: socket.socket) -> None:
    """Half-close and drain until the client closes, so our alert is not overtaken by RST."""
    with contextlib.suppress(OSError), selectors.DefaultSelector() as sel:
        sock.shutdown(socket.SHUT_WR)
        sel.register(sock, selectors.EVENT_READ)
        for _ in range(64):
            # raw bytes: after a refusal nothing is decrypted any more
            if not sel.select(WAIT) or not socket.socket.recv(sock, 65536):
                break


def _serve_stdlib(conn: socket.socket, pki: dict[str, Path], crl: bool, strict: bool) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki["server"]))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(pki["client-cas"]))
    if crl:
        ctx.load_verify_locations(cafile=str(pki["crl"]))
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    if strict:
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    with ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False) as tls:
        try:
            tls.do_handshake()
            tls.recv(65536)
            tls.sendall(_ANSWER)
        except (ssl.SSLError, OSError):
            _linger(tls)


def _serve_pyopenssl(conn: socket.socket, pki: dict[str, Path], crl: bool, strict: bool) -> None:
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.use_certificate_chain_file(str(pki["server"]))
    ctx.use_privatekey_file(str(pki["server"]))
    ctx.load_verify_locations(str(pki["client-cas"]))
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: args[-1])
    if crl:
        store = ctx.get_cert_store()
        loaded = x509.load_pem_x509_crl(pki["crl"].read_bytes())
        store.add_crl(loaded)
        store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
    if strict:
        ctx.get_cert_store().set_flags(crypto.X509StoreFlags.X509_STRICT)
    conn.settimeout(None)  # pyOpenSSL needs a blocking socket; the client's timeout bounds it
    tls = SSL.Connection(ctx, conn)
    tls.set_accept_state()
    try:
        tls.do_handshake()
        tls.recv(65536)
        tls.sendall(_ANSWER)
        tls.shutdown()
    except (SSL.Error, OSError):
        _linger(conn)


@contextlib.contextmanager
def minimal_server(
    backend: str, pki: dict[str, Path], crl: bool = False, strict: bool = False
) -> Iterator[str]:
    """One connection, served by a bare ``backend`` server on 127.0.0.1; yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)
    serve = _serve_stdlib if backend == "stdlib" else _serve_pyopenssl

    def run() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(WAIT)
            serve(conn, pki, crl, strict)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{listener.getsockname()[1]}/"
    finally:
        listener.close()
        thread.join(WAIT)


def _client(pki: dict[str, Path], credential: str | None, tls: str) -> TLSClient:
    cred = pki[credential] if credential else None
    return TLSClient(pki["ca"], cred, timeout=WAIT, tls=tls)


@pytest.mark.parametrize("tls", VERSIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_good_client_is_served(pki, backend, tls):
    """The control: the same servers serve a client without any fault."""
    with minimal_server(backend, pki) as url:
        attempt = _client(pki, "good", tls).get(url)
    assert attempt.outcome == OK, attempt.detail
    assert attempt.tls_version == f"TLSv{tls}"


@pytest.mark.parametrize("cause", list(CREDENTIALS))
@pytest.mark.parametrize("tls", VERSIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_openssl_refuses_as_the_table_predicts(pki, backend, tls, cause):
    predicted = predict_refusal(cause, tls)
    assert predicted is not None
    crl, strict = cause == refusals.REVOKED, cause == refusals.NONCONFORMING
    with minimal_server(backend, pki, crl=crl, strict=strict) as url:
        attempt = _client(pki, CREDENTIALS[cause], tls).get(url)
    assert attempt.outcome == REJECTED, attempt.detail
    observed = refusals.Refusal(attempt.stage, attempt.form, attempt.alert)
    assert observed == predicted, attempt.detail
    assert attempt.tls_version == f"TLSv{tls}"


def test_the_table_covers_every_certificate_cause():
    """Every cause the oracle can give has a prediction in both versions."""
    causes = {*CREDENTIALS, refusals.HOST_MISMATCH, refusals.NO_TRUST_STORE}
    for cause in causes:
        for tls in VERSIONS:
            assert predict_refusal(cause, tls) is not None, (cause, tls)
    assert predict_refusal(None, "1.3") is None
    assert predict_refusal(refusals.NO_CERTIFICATE, "1.1") is None
