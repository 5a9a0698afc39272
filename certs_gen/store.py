"""Write a built set to disk atomically, and recognise a set this project made.

A directory is recognised by its ``manifest.json``: the files it lists were written
here, and only those may be replaced. ``examine`` tells an empty directory, an intact
set, a damaged one (a listed file missing, edited or corrupt) and anything else apart,
so that nothing a user put in a directory is replaced without ``--force``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .build import Material
from .keys import DEFAULT_KEY_TYPE, key_type_of
from .profiles import Bundle, CertSpec

# serial-negative is negative on purpose (certs_gen.build); reading it back is not news.
warnings.filterwarnings("ignore", message="Parsed a serial number", module=__name__)

SCHEMA = 1
MANIFEST = "manifest.json"
SCRATCH_PREFIX = ".certs-gen-"  # write_set's scratch directory, removed when it ends


def file_names(spec: CertSpec, material: Material) -> dict[str, str | None]:
    leaf = spec.role != "ca"
    names = {
        "cert": f"{spec.id}.pem",
        "key": f"{spec.id}.key",
        "chain": f"{spec.id}.chain.pem" if material.intermediates else None,
        "key_and_chain": f"{spec.id}.key-and-chain.pem" if leaf else None,
    }
    if material.crl is not None:  # only a CA that revoked something has the key
        names["crl"] = f"{spec.id}.crl.pem"
    return names


def bundle_file(bundle: Bundle) -> str:
    return f"{bundle.id}.bundle.pem"


def describe(spec: CertSpec, material: Material, names: dict[str, str | None]) -> dict[str, Any]:
    """The manifest row, read back from the certificate itself rather than the spec."""
    cert = x509.load_pem_x509_certificate(material.cert)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        identities = [_identity(name) for name in san]
    except x509.ExtensionNotFound:
        identities = []
    return {
        "id": spec.id,
        "role": spec.role,
        "issuer": spec.issuer,
        "identities": identities,
        "common_name": spec.cn,
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
        "serial": _hex(cert.serial_number),
        "sha256": cert.fingerprint(hashes.SHA256()).hex().upper(),
        "key_type": key_type_of(cert),
        **names,
    }


def write_set(
    out_dir: Path,
    profile: str,
    specs: tuple[CertSpec, ...],
    built: dict[str, Material],
    bundles: tuple[Bundle, ...] = (),
    key_type: str = DEFAULT_KEY_TYPE,
) -> dict[str, Any]:
    """Write every file into a scratch directory, then move them in, manifest last.

    The old manifest is removed first, so an interrupted run leaves a directory
    that the next run does not mistake for a complete set.
    """
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=out_dir))
    try:
        rows = []
        for spec in specs:
            material = built[spec.id]
            names = file_names(spec, material)
            contents = {
                "cert": material.cert,
                "key": material.key,
                "chain": b"".join(material.intermediates),
                "key_and_chain": material.key + material.cert + b"".join(material.intermediates),
                "crl": material.crl or b"",
            }
            for kind, name in names.items():
                if name is not None:
                    _write(scratch / name, contents[kind], private=kind in ("key", "key_and_chain"))
            rows.append(describe(spec, material, names))
        manifest = {
            "schema": SCHEMA,
            "profile": profile,
            "key_type": key_type,
            "generated_at": _iso(dt.datetime.now(dt.timezone.utc)),
            "certs": rows,
        }
        if bundles:  # absent from sets without any, so their manifests stay as they were
            manifest["bundles"] = {}
            for bundle in bundles:
                blocks = [built[c].cert for c in bundle.cas]
                blocks += [built[c].crl or b"" for c in bundle.crls]
                _write(scratch / bundle_file(bundle), b"".join(blocks), private=False)
                manifest["bundles"][bundle.id] = bundle_file(bundle)
        _write(scratch / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode(), private=False)
        (out_dir / MANIFEST).unlink(missing_ok=True)
        for path in sorted(scratch.iterdir(), key=lambda p: p.name == MANIFEST):
            os.replace(path, out_dir / path.name)
        return manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class Verdict:
    """What a directory holds, as far as certificate sets go.

    ``kind``: ``empty`` (nothing there), ``intact`` (a set this project made, every file
    as its manifest says), ``damaged`` (a set this project made, with a file missing,
    edited or corrupt), ``foreign`` (files, but no manifest of this project's).
    ``reason`` says why in a few words; ``manifest`` is the parsed manifest, if any.
    """

    kind: str
    reason: str
    manifest: dict[str, Any] | None = None

    def owned(self) -> set[str]:
        """File names the manifest lists: this project wrote them, and may replace them."""
        if self.manifest is None:
            return set()
        names = {MANIFEST}
        for row in self.manifest.get("certs", []):
            for kind in ("cert", "key", "chain", "key_and_chain", "crl"):
                if isinstance(row.get(kind), str):
                    names.add(row[kind])
        bundles = self.manifest.get("bundles", {})
        if isinstance(bundles, dict):
            names.update(v for v in bundles.values() if isinstance(v, str))
        return names


def examine(out_dir: Path) -> Verdict:
    """Look at ``out_dir`` without changing anything (see ``Verdict``)."""
    entries = [p for p in out_dir.iterdir() if not p.name.startswith(SCRATCH_PREFIX)]
    if not entries:
        return Verdict("empty", f"{out_dir} is empty")
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except FileNotFoundError:
        return Verdict("foreign", f"it holds {len(entries)} file(s) and no {MANIFEST}")
    except (OSError, ValueError) as exc:
        return Verdict("foreign", f"its {MANIFEST} cannot be read ({_why(exc)})")
    if not _looks_like_ours(manifest):
        return Verdict("foreign", f"its {MANIFEST} is not a certs_gen manifest")
    if manifest.get("schema") != SCHEMA:
        return Verdict("damaged", f"manifest schema {manifest.get('schema')!r}", manifest)
    for row in manifest["certs"]:
        problem = _check_row(out_dir, row)
        if problem:
            return Verdict("damaged", problem, manifest)
    for name in manifest.get("bundles", {}).values():
        if not (out_dir / name).is_file():
            return Verdict("damaged", f"{name} is missing", manifest)
    ids = len(manifest["certs"])
    return Verdict("intact", f"an intact {manifest['profile']} set of {ids} credentials", manifest)


def read_valid_manifest(
    out_dir: Path,
    profile: str,
    ids: list[str],
    bundles: list[str] = (),
    key_type: str | None = DEFAULT_KEY_TYPE,
) -> dict[str, Any] | None:
    """The existing manifest if it describes a complete, intact set of ``profile`` (and of
    ``key_type``, unless None: any), else None. A manifest written before key types
    existed is of the default one."""
    try:
        verdict = examine(out_dir)
    except OSError:
        return None
    manifest = verdict.manifest
    if verdict.kind != "intact" or manifest is None or manifest["profile"] != profile:
        return None
    if [row["id"] for row in manifest["certs"]] != ids:
        return None
    if sorted(manifest.get("bundles", {})) != sorted(bundles):
        return None
    if key_type is not None and manifest.get("key_type", DEFAULT_KEY_TYPE) != key_type:
        return None
    return manifest


def _looks_like_ours(manifest: object) -> bool:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("certs"), list):
        return False
    if not isinstance(manifest.get("profile"), str):
        return False
    bundles = manifest.get("bundles", {})
    if not isinstance(bundles, dict) or not all(isinstance(v, str) for v in bundles.values()):
        return False
    return all(
        isinstance(row, dict)
        and all(isinstance(row.get(k), str) for k in ("id", "cert", "key", "sha256"))
        for row in manifest["certs"]
    )


def _check_row(out_dir: Path, row: dict[str, Any]) -> str | None:
    """None when this credential's files are as the manifest says, else what is wrong."""
    try:
        cert = x509.load_pem_x509_certificate((out_dir / row["cert"]).read_bytes())
    except FileNotFoundError:
        return f"{row['cert']} is missing"
    except (OSError, ValueError) as exc:
        return f"{row['cert']} cannot be read as a certificate ({_why(exc)})"
    if cert.fingerprint(hashes.SHA256()).hex().upper() != row["sha256"]:
        return f"{row['cert']} is not the certificate its manifest names (edited or replaced)"
    try:
        key = serialization.load_pem_private_key((out_dir / row["key"]).read_bytes(), None)
    except FileNotFoundError:
        return f"{row['key']} is missing"
    except (OSError, ValueError, TypeError) as exc:
        return f"{row['key']} cannot be read as a private key ({_why(exc)})"
    if _spki(key.public_key()) != _spki(cert.public_key()):
        return f"{row['key']} does not match {row['cert']}"
    for kind in ("chain", "key_and_chain", "crl"):
        name = row.get(kind)
        if name is not None and not (out_dir / name).is_file():
            return f"{name} is missing"
    return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())[:80] or type(exc).__name__


def _write(path: Path, data: bytes, *, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _identity(name: x509.GeneralName) -> str:
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    return f"{type(name).__name__}:{name.value}"


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex(number: int) -> str:
    """Whole bytes of the magnitude, a ``-`` before a negative one (OpenSSL's i2a_ASN1_INTEGER)."""
    digits = format(abs(number), "X")
    return "-" * (number < 0) + digits.zfill(len(digits) + len(digits) % 2)


def _spki(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
