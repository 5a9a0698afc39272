"""Certificate sets for mutual-TLS testing, generated once and looked up by id.

certs = certs_gen.generate("build/certs")          # or profile="extended"
certs["localhost"].key_and_chain                   # what requests' cert= takes
certs["ca"].cert                                   # the trust root
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .build import build
from .profiles import BUNDLES, PROFILES
from .store import MANIFEST, read_valid_manifest, write_set

__all__ = [
    "PROFILES",
    "CertSet",
    "CertsGenError",
    "Credential",
    "OutputDirError",
    "UnknownCredentialError",
    "UnknownProfileError",
    "generate",
    "load",
]


class CertsGenError(Exception):
    """Base of every error certs_gen raises on bad input; its message is one line."""


class UnknownProfileError(CertsGenError, ValueError):
    pass


class UnknownCredentialError(CertsGenError, KeyError):
    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


class OutputDirError(CertsGenError, OSError):
    pass


@dataclass(frozen=True)
class Credential:
    """One row of the manifest, with file names resolved to absolute paths."""

    id: str
    role: str
    issuer: str | None
    identities: tuple[str, ...]
    common_name: str | None
    not_before: str
    not_after: str
    serial: str
    sha256: str
    cert: Path
    key: Path
    chain: Path | None
    key_and_chain: Path | None
    crl: Path | None = None  # a CA's CRL (PEM), when the set revokes one of its leaves


@dataclass(frozen=True)
class CertSet:
    root: Path
    profile: str
    generated_at: str
    credentials: dict[str, Credential]
    bundles: dict[str, Path] = field(default_factory=dict)  # id -> file (profiles.BUNDLES)

    def __getitem__(self, cred_id: str) -> Credential:
        try:
            return self.credentials[cred_id]
        except KeyError:
            known = ", ".join(self.credentials)
            raise UnknownCredentialError(
                f"unknown credential id {cred_id!r} in profile {self.profile!r} (known: {known})"
            ) from None

    def __contains__(self, cred_id: object) -> bool:
        return cred_id in self.credentials

    def __iter__(self) -> Iterator[Credential]:
        return iter(self.credentials.values())

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST


def generate(
    out_dir: str | os.PathLike[str], profile: str = "standard", force: bool = False
) -> CertSet:
    """Return the set in ``out_dir``, creating it unless an intact one of ``profile`` is there."""
    if profile not in PROFILES:
        raise UnknownProfileError(
            f"unknown profile {profile!r} (choose from: {', '.join(PROFILES)})"
        )
    root = _prepare_dir(Path(out_dir))
    specs = PROFILES[profile]
    bundles = BUNDLES.get(profile, ())
    ids = [s.id for s in specs]
    manifest = None if force else read_valid_manifest(root, profile, ids, [b.id for b in bundles])
    if manifest is None:
        try:
            manifest = write_set(root, profile, specs, build(specs), bundles)
        except OSError as exc:
            raise OutputDirError(f"cannot write certificates to {root}: {exc.strerror}") from None
    return _certset(root, manifest)


def load(out_dir: str | os.PathLike[str]) -> CertSet:
    """Open a set written earlier, whatever its profile, without regenerating anything."""
    root = Path(out_dir).resolve()
    for profile, specs in PROFILES.items():
        bundles = [b.id for b in BUNDLES.get(profile, ())]
        manifest = read_valid_manifest(root, profile, [s.id for s in specs], bundles)
        if manifest is not None:
            return _certset(root, manifest)
    raise OutputDirError(f"{root} holds no complete certificate set (run: python -m certs_gen)")


def _prepare_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"output path {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(f"cannot create output directory {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputDirError(f"output directory {path} is not writable")
    return path.resolve()


def _certset(root: Path, manifest: dict) -> CertSet:
    def path(name: str | None) -> Path | None:
        return root / name if name is not None else None

    creds = {}
    for row in manifest["certs"]:
        creds[row["id"]] = Credential(
            id=row["id"],
            role=row["role"],
            issuer=row["issuer"],
            identities=tuple(row["identities"]),
            common_name=row["common_name"],
            not_before=row["not_before"],
            not_after=row["not_after"],
            serial=row["serial"],
            sha256=row["sha256"],
            cert=root / row["cert"],
            key=root / row["key"],
            chain=path(row["chain"]),
            key_and_chain=path(row["key_and_chain"]),
            crl=path(row.get("crl")),
        )
    bundles = {b: root / name for b, name in manifest.get("bundles", {}).items()}
    return CertSet(root, manifest["profile"], manifest["generated_at"], creds, bundles)
