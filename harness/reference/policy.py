"""Verification policy (SPEC section 2) and configuration checks (SPEC section 8).

Both back-ends read the same validated ``TLSSettings`` so that they cannot
disagree on what, say, ``optional`` plus a host check is supposed to do.

Every file is checked before a back-end opens it, because the back-ends fail
badly on some faults: OpenSSL blocks forever opening a FIFO, reads a device
until memory runs out, and silently skips a PEM block it cannot decode when an
earlier one loaded. So a file must be a regular file of at most
``MAX_FILE_BYTES``, its path free of control characters (a path is always shown
with ``repr`` so that a message stays one line), and every PEM block in it must
be complete and decode to what its label says. The PEM block scan is written
here because no maintained library reports *which* block is broken: cryptography
and OpenSSL both stop at (or skip) the first bad one.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import crypto

from .errors import ConfigError, ConfigFileError

CLIENT_CHECKS = ("ignore", "optional", "required")
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
# Timeouts outside this range cannot work: below 10 ms a loaded machine cannot even
# schedule the handshake's reply; above 5 minutes a stalled client is as good as never
# dropped. Non-finite values (nan, inf) are refused too.
MIN_TIMEOUT = 0.01
MAX_TIMEOUT = 300.0
# No certificate, key or CA bundle a server needs comes near this (Mozilla's whole
# root store is about 0.3 MB); a bigger "file" is a mistake (a log, an image, a device).
MAX_FILE_BYTES = 10 * 1024 * 1024

_CERTIFICATE_LABEL = "CERTIFICATE"


@dataclass(frozen=True)
class TLSSettings:
    certificate: str
    private_key: str
    certificate_chain: str | None = None
    client_CA: str | None = None
    client_CRL: str | None = None  # PEM CRL(s) checked against the client's certificate
    client_check: str = "ignore"
    client_check_host: bool = False
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    # (path prefix, "required") pairs: asked for after the handshake (perpath.py).
    path_policies: tuple[tuple[str, str], ...] = ()
    tls_version: str | None = None  # "TLSv1.2" | "TLSv1.3": the only version offered

    @property
    def requests_certificate(self) -> bool:
        return self.client_check != "ignore"

    @property
    def requires_certificate(self) -> bool:
        return self.client_check == "required"


def validate(settings: TLSSettings) -> TLSSettings:
    """Refuse every configuration that SPEC sections 2 and 8 call invalid, naming what is wrong.

    Raises ConfigError (or its subclass ConfigFileError, for a file) with a one-line message.
    """
    return check_settings(settings)[0]


def check_settings(settings: TLSSettings) -> tuple[TLSSettings, CAFile | None]:
    """``validate``, also returning the client CA file as checked (None without one), so
    that a back-end can load what was checked instead of reading and parsing it again."""
    if settings.client_check not in CLIENT_CHECKS:
        choices = ", ".join(CLIENT_CHECKS)
        raise ConfigError(
            f"unknown client_check {settings.client_check!r} (choose from: {choices})"
        )
    if not isinstance(settings.client_check_host, bool):
        raise ConfigError(
            f"client_check_host must be true or false, not {settings.client_check_host!r}"
        )
    if settings.client_check_host and settings.client_check == "ignore":
        raise ConfigError(
            "client_check_host needs a verified client certificate: "
            "use client_check 'optional' or 'required', not 'ignore'"
        )
    if settings.requests_certificate and not settings.client_CA:
        raise ConfigError(f"client_check {settings.client_check!r} needs client_CA (a CA file)")
    if settings.client_CRL and not settings.requests_certificate:
        raise ConfigError(
            "client_CRL needs a verified client certificate: "
            "use client_check 'optional' or 'required', not 'ignore'"
        )
    check_timeout("handshake_timeout", settings.handshake_timeout)
    if settings.path_policies or settings.tls_version is not None:
        settings = replace(settings, path_policies=_check_path_policies(settings))

    cert = load_leaf_certificate(settings.certificate)
    key = _load_key(settings.private_key)
    if _spki(key.public_key()) != _spki(cert.public_key()):
        raise ConfigError(
            f"private key {settings.private_key!r} does not match certificate "
            f"{settings.certificate!r}"
        )
    if settings.certificate_chain:
        _checked_certificates(settings.certificate_chain, "certificate chain", True)
    client_ca = check_ca_file(settings.client_CA) if settings.client_CA else None
    if settings.client_CRL:
        load_crls(settings.client_CRL)
    return settings, client_ca


TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")


def _check_path_policies(settings: TLSSettings) -> tuple[tuple[str, str], ...]:
    """Per-path policies (SPEC section 9): each a path prefix starting with '/' under
    ``required``, over a connection policy of ``ignore`` or ``optional``, with a client CA.

    Only ``required`` per path: a path that merely *may* ask has nothing to enforce,
    and the stdlib cannot ask without requiring (its verify mode is fixed per context).
    """
    if settings.tls_version is not None and settings.tls_version not in TLS_VERSIONS:
        raise ConfigError(
            f"unknown tls_version {settings.tls_version!r} (choose from: {', '.join(TLS_VERSIONS)})"
        )
    if not settings.path_policies:
        return ()
    try:
        pairs = tuple((str(prefix), str(check)) for prefix, check in settings.path_policies)
    except (TypeError, ValueError):
        raise ConfigError(
            f"path_policies must be (path prefix, client_check) pairs, not "
            f"{settings.path_policies!r:.80}"
        ) from None
    for prefix, check in pairs:
        if not prefix.startswith("/") or any(ord(ch) <= 0x20 for ch in prefix):
            raise ConfigError(f"path policy prefix must start with '/', not {prefix!r}")
        if check != "required":
            raise ConfigError(
                f"path policy for {prefix!r} must be 'required', not {check!r} "
                "(a certificate asked for by path is a required one)"
            )
    if settings.client_check == "required":
        raise ConfigError("path_policies need client_check 'ignore' or 'optional', not 'required'")
    if not settings.client_CA:
        raise ConfigError("path_policies need client_CA (a CA file)")
    return pairs


def load_crls(path: str) -> list[x509.CertificateRevocationList]:
    """Every PEM CRL in the file (RFC 5280 section 5), read as every configuration file
    is; a file without one, or with a corrupt one, is a configuration error."""
    data = read_config_file(path, "client CRL")
    crls = []
    for block in pem_blocks(data, path, "client CRL"):
        if block.label != "X509 CRL":
            continue
        try:
            crls.append(x509.load_der_x509_crl(block.der))
        except ValueError:
            raise ConfigFileError(
                f"client CRL file holds a corrupt CRL at line {block.line}: {path!r}", path
            ) from None
    if not crls:
        raise ConfigFileError(f"client CRL file holds no PEM CRL: {path!r}", path)
    return crls


def check_timeout(name: str, value: object) -> float:
    """``value`` as seconds if a timeout can work with it; ConfigError naming ``name`` if not."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not MIN_TIMEOUT <= value <= MAX_TIMEOUT
    ):
        raise ConfigError(
            f"{name} must be a number of seconds in [{MIN_TIMEOUT:g}, {MAX_TIMEOUT:g}], "
            f"not {value!r}"
        )
    return float(value)


# -- files ---------------------------------------------------------------------------


def read_config_file(path: str | os.PathLike[str] | None, what: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES, or ConfigError saying why not.

    Never opens anything but a regular file for reading (a FIFO would block, a
    device never end): the type is checked with stat() before open(), and again
    on the open descriptor, which is opened non-blocking in case it changed.
    """
    if path is None or path == "":
        raise ConfigError(f"{what} file is required")
    try:
        path = os.fspath(path)
    except TypeError:
        raise ConfigError(f"{what} file must be a path, not {path!r}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise ConfigFileError(f"{what} file path contains a control character: {path!r}", path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigFileError(f"{what} file not found: {path!r}", path) from None
    except OSError as exc:
        raise ConfigFileError(f"{what} file unreadable: {path!r} ({exc.strerror})", path) from None
    _check_regular(st, path, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ConfigFileError(f"{what} file not found: {path!r}", path) from None
    except NotADirectoryError:
        raise ConfigFileError(
            f"{what} file not found (a parent is not a directory): {path!r}", path
        ) from None
    except OSError as exc:
        raise ConfigFileError(f"{what} file unreadable: {path!r} ({exc.strerror})", path) from None
    with os.fdopen(fd, "rb") as fh:
        _check_regular(os.fstat(fh.fileno()), path, what)
        try:
            data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigFileError(
                f"{what} file unreadable: {path!r} ({exc.strerror})", path
            ) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigFileError(_too_large(what, path), path)
    return data


def _check_regular(st: os.stat_result, path: str, what: str) -> None:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise ConfigFileError(f"{what} file is a directory: {path!r}", path)
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a character device"
            if stat.S_ISCHR(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise ConfigFileError(f"{what} file is {kind}, not a regular file: {path!r}", path)
    if st.st_size > MAX_FILE_BYTES:
        raise ConfigFileError(_too_large(what, path), path)


def _too_large(what: str, path: str) -> str:
    return f"{what} file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB: {path!r}"


@dataclass(frozen=True)
class PEMBlock:
    label: str  # "CERTIFICATE", "PRIVATE KEY", ...
    line: int  # 1-based line of its BEGIN
    der: bytes
    headers: bool = False  # RFC 1421 header lines ("Proc-Type: ...") inside the block


def pem_blocks(data: bytes, path: str, what: str) -> list[PEMBlock]:
    """Every PEM block of ``data`` (RFC 7468), decoded; ConfigFileError on any broken one.

    Text outside blocks is allowed (bundles carry comments). A BEGIN without its
    END (a truncated file), an END without a BEGIN, mismatched labels and bodies
    that are not strict base64 are errors that name the line.
    """
    blocks: list[PEMBlock] = []
    label: str | None = None
    begun = 0
    body: list[bytes] = []
    headers = False
    for number, raw, run in _segments(data):
        if run is not None:  # lines without a marker: a block's body, or text between blocks
            if label is None:
                continue
            if b":" not in run:
                body.append(b"".join(map(bytes.strip, run.split(b"\n"))))
                continue
            for piece in map(bytes.strip, run.split(b"\n")):
                if b":" in piece:  # RFC 1421 headers carry a colon
                    headers = True
                else:
                    body.append(piece)
            continue
        line = raw.strip()
        if line.startswith(b"-----BEGIN ") and line.endswith(b"-----"):
            if label is not None:
                raise ConfigFileError(_truncated(what, path, label, begun), path)
            label, begun, body = line[11:-5].decode("ascii", "replace"), number, []
            headers = False
        elif line.startswith(b"-----END ") and line.endswith(b"-----"):
            end = line[9:-5].decode("ascii", "replace")
            if label is None:
                raise ConfigFileError(
                    f"{what} file has an END line without BEGIN at line {number}: {path!r}", path
                )
            if end != label:
                raise ConfigFileError(
                    f"{what} file has a PEM block begun as {label!r} at line {begun} "
                    f"but ended as {end!r}: {path!r}",
                    path,
                )
            try:
                # validate=True: only the base64 alphabet and padding at the end (Python
                # 3.10 has no binascii strict_mode; this is its portable equivalent)
                der = base64.b64decode(b"".join(body), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigFileError(
                    f"{what} file has a corrupt PEM block at line {begun} "
                    f"(its body is not base64): {path!r}",
                    path,
                ) from None
            blocks.append(PEMBlock(label, begun, der, headers))
            label = None
        elif label is not None:
            if b":" in line:  # RFC 1421 headers carry a colon
                headers = True
            else:
                body.append(line)
    if label is not None:
        raise ConfigFileError(_truncated(what, path, label, begun), path)
    return blocks


def _segments(data: bytes) -> Iterator[tuple[int, bytes, bytes | None]]:
    """``data`` as (line number, line, None) for each line holding ``-----`` and
    (first line number, b"", run) for each run of lines between them (joined by
    ``\\n``), so that a body is handled a run at a time, not a line at a time
    (10,001 certificates: 190,000 lines). Lines as ``bytes.splitlines`` cuts them:
    at ``\\n``, ``\\r\\n`` or a lone ``\\r``."""
    if b"\r" in data:  # one \n per line break keeps every line and its number
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if data.endswith(b"\n"):
        data = data[:-1]  # splitlines makes no empty line after the last break
    number, at, size = 1, 0, len(data)
    while at <= size and data:
        marker = data.find(b"-----", at)
        if marker < 0:
            yield number, b"", data[at:]
            return
        newline = data.rfind(b"\n", at, marker)
        start = at if newline < 0 else newline + 1
        if start > at:
            run = data[at : start - 1]
            yield number, b"", run
            number += run.count(b"\n") + 1
        end = data.find(b"\n", marker)
        end = size if end < 0 else end
        yield number, data[start:end], None
        number, at = number + 1, end + 1


def _truncated(what: str, path: str, label: str, line: int) -> str:
    return (
        f"{what} file has a truncated PEM block ({label!r} begun at line {line} "
        f"has no END line): {path!r}"
    )


def _openssl_stats(der: bytes) -> dict[str, int] | None:
    """The stdlib's OpenSSL's view of DER certificate(s): store counts, or None if it
    cannot parse them.

    The stdlib loads ``cadata`` with d2i_X509 and counts CA certificates with
    X509_check_ca (``SSLContext.cert_store_stats``). One SSLContext costs about
    1 ms, and the stdlib's OpenSSL 3.0 parses a certificate in about 250 us, so
    this is kept for the few certificates the fast checks below cannot decide.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cadata=der)
    except (ssl.SSLError, ValueError):
        return None
    return ctx.cert_store_stats()


def _read_certificate(der: bytes) -> x509.Certificate | None:
    """cryptography's reading of ``der`` (about 2 us, lazy), or None if it refuses it."""
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _openssl_parses(der: bytes) -> bool:
    """Whether OpenSSL's d2i_X509 reads ``der``, which cryptography refused.

    cryptography is stricter than OpenSSL (it refuses certificates the server
    will in fact use), so what it reads OpenSSL reads too; only what it refuses
    is put to OpenSSL: pyOpenSSL's d2i_X509, then the stdlib's, so that a block
    either back-end reads is never called corrupt.
    """
    try:
        crypto.load_certificate(crypto.FILETYPE_ASN1, der)
        return True
    except crypto.Error:
        return _openssl_stats(der) is not None


def _maybe_ca(cert: x509.Certificate | None) -> bool:
    """False only when X509_check_ca must say "not a CA", read with cryptography.

    OpenSSL's check_ca (crypto/x509/v3_purp.c): a keyUsage without keyCertSign,
    or basicConstraints CA:FALSE, is never a CA. Anything else (CA:TRUE, no
    basicConstraints, a certificate cryptography cannot parse) is a candidate
    that the stdlib's own X509_check_ca then confirms.
    """
    if cert is None:
        return True
    try:
        extensions = cert.extensions
        if not extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
        return extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except x509.ExtensionNotFound:
        return True
    except Exception:  # ValueError (unparsable), DuplicateExtension, ...: let OpenSSL say
        return True


@dataclass(frozen=True)
class CheckedCertificate:
    """One CERTIFICATE block that OpenSSL parses; ``parsed`` is cryptography's reading
    of it, None for the few that only OpenSSL reads."""

    block: PEMBlock
    parsed: x509.Certificate | None


@dataclass(frozen=True)
class CAFile:
    """A client CA file as ``check_ca_file`` checked it: its certificates in file order."""

    path: str
    certificates: tuple[CheckedCertificate, ...]


def _checked_certificates(
    path: str, what: str, only_certificates: bool
) -> list[CheckedCertificate]:
    """Every CERTIFICATE block of the file, each one OpenSSL parses; ConfigFileError if not.

    Linear in the file: one parse per block (a 10,001-certificate bundle is
    checked in about 0.2 s, where an SSLContext per block took seconds).
    """
    data = read_config_file(path, what)
    blocks = pem_blocks(data, path, what)
    certs = [b for b in blocks if b.label == _CERTIFICATE_LABEL]
    if not certs:
        raise ConfigFileError(f"{what} file holds no PEM certificate: {path!r}", path)
    for block in blocks:
        if block.label != _CERTIFICATE_LABEL and only_certificates:
            raise ConfigFileError(
                f"{what} file holds a {block.label!r} block at line {block.line}; "
                f"only CERTIFICATE blocks belong there: {path!r}",
                path,
            )
    checked = []
    for block in certs:
        parsed = _read_certificate(block.der)
        if parsed is None and not _openssl_parses(block.der):
            raise ConfigFileError(
                f"{what} file has a corrupt certificate at line {block.line} "
                f"(OpenSSL cannot parse it): {path!r}",
                path,
            )
        checked.append(CheckedCertificate(block, parsed))
    return checked


def load_leaf_certificate(path: str, what: str = "certificate") -> x509.Certificate:
    """The first certificate of a PEM file, every block checked; it must parse with
    cryptography too (its public key is compared with the private key's)."""
    first = _checked_certificates(path, what, only_certificates=False)[0]
    if first.parsed is not None:
        return first.parsed
    try:
        return x509.load_der_x509_certificate(first.block.der)
    except ValueError as exc:
        raise ConfigFileError(
            f"{what} file's first certificate cannot be parsed ({exc}): {path!r}", path
        ) from None


def load_ca_file(path: str, what: str = "client CA") -> int:
    """Check a CA bundle (``check_ca_file``); returns how many certificates it holds."""
    return len(check_ca_file(path, what).certificates)


def check_ca_file(path: str, what: str = "client CA") -> CAFile:
    """Check a CA bundle: every block a certificate OpenSSL parses, at least one a CA.

    "A CA" is what OpenSSL's X509_check_ca says: basicConstraints CA:TRUE (or,
    without basicConstraints, a self-signed v1 certificate or keyUsage
    keyCertSign).

    Linear in the file: every block is parsed once (``_checked_certificates``),
    certificates that cannot be a CA are set aside with cryptography
    (``_maybe_ca``), and the stdlib's X509_check_ca (``cert_store_stats``)
    confirms the rest ``_CA_BATCH`` at a time, stopping at the first CA (so a
    file that starts with a CA costs one batch).
    """
    checked = _checked_certificates(path, what, only_certificates=True)
    if not _any_ca(checked):
        raise ConfigFileError(
            f"{what} file holds no CA certificate (none has basicConstraints CA:TRUE): {path!r}",
            path,
        )
    return CAFile(path, tuple(checked))


_CA_BATCH = 64  # certificates per SSLContext (one X509_STORE) when looking for a CA


def _any_ca(checked: list[CheckedCertificate]) -> bool:
    """Whether X509_check_ca calls any certificate a CA: candidates (``_maybe_ca``) are
    put to the stdlib ``_CA_BATCH`` at a time, in file order, until one is."""
    batch: list[bytes] = []
    for cert in checked:
        if _maybe_ca(cert.parsed):
            batch.append(cert.block.der)
            if len(batch) == _CA_BATCH:
                if _has_ca(batch):
                    return True
                batch = []
    return bool(batch) and _has_ca(batch)


def _has_ca(batch: list[bytes]) -> bool:
    """Whether X509_check_ca calls any certificate of ``batch`` (DER) a CA."""
    stats = _openssl_stats(b"".join(batch))
    if stats is None:  # one the stdlib cannot read: ask one by one
        return any((_openssl_stats(der) or {}).get("x509_ca", 0) for der in batch)
    return stats.get("x509_ca", 0) > 0


def _load_key(path: str):
    data = read_config_file(path, "private key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigFileError(
            f"private key file holds no unencrypted PEM private key: {path!r}", path
        ) from None


def _spki(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
