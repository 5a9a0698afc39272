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
from .keys import DEFAULT_KEY_TYPE, KEY_TYPES
from .profiles import BUNDLES, PROFILES, with_key_type
from .store import MANIFEST, bundle_file, examine, read_valid_manifest, write_set

__all__ = [
    "KEY_TYPES",
    "PROFILES",
    "CertSet",
    "CertsGenError",
    "Credential",
    "OutputDirError",
    "UnknownCredentialError",
    "UnknownKeyTypeError",
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


class UnknownKeyTypeError(CertsGenError, ValueError):
    pass


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
    key_type: str = DEFAULT_KEY_TYPE  # keys.KEY_TYPES, read back from the certificate


@dataclass(frozen=True)
class CertSet:
    root: Path
    profile: str
    generated_at: str
    credentials: dict[str, Credential]
    bundles: dict[str, Path] = field(default_factory=dict)  # id -> file (profiles.BUNDLES)
    origin: str = ""  # how generate() came by it: "generated: ...", "reused: ...", ...
    key_type: str = DEFAULT_KEY_TYPE  # the set's key type (key-type credentials keep theirs)

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
    out_dir: str | os.PathLike[str],
    profile: str = "standard",
    force: bool = False,
    key_type: str = DEFAULT_KEY_TYPE,
) -> CertSet:
    """Return the set in ``out_dir``: reused when an intact one of ``profile`` is there,
    else written, but only where that loses nothing of anyone's.

    Written when ``out_dir`` is empty, or holds a set this project made (recognised by
    its manifest) of another profile; then only files that set listed are replaced and
    nothing is deleted. Refused with ``OutputDirError`` (one line, nothing changed)
    unless ``force``: a directory holding anything else, a damaged set (a file missing,
    edited or corrupt: reported, never silently regenerated), or a set of another
    profile beside a file of the user's with one of the new set's names. ``force``
    regenerates whatever is there. ``key_type`` (keys.KEY_TYPES) is the key every
    credential holds, CAs included (UnknownKeyTypeError for another); a set of another
    key type is regenerated like one of another profile. Only files an earlier set's
    manifest listed are ever deleted (those the new set does not have).
    ``CertSet.origin`` says which happened, and why.
    """
    if profile not in PROFILES:
        raise UnknownProfileError(
            f"unknown profile {profile!r} (choose from: {', '.join(PROFILES)})"
        )
    if key_type not in KEY_TYPES:
        raise UnknownKeyTypeError(
            f"unknown key type {key_type!r} (choose from: {', '.join(KEY_TYPES)})"
        )
    root = _prepare_dir(Path(out_dir))
    specs = with_key_type(PROFILES[profile], key_type)
    bundles = BUNDLES.get(profile, ())
    ids = [s.id for s in specs]
    try:
        verdict = examine(root)
    except OSError as exc:
        raise OutputDirError(f"cannot read {root}: {exc.strerror}") from None
    manifest = verdict.manifest
    if force:
        origin = f"regenerated (--force): {verdict.reason}"
    elif verdict.kind == "empty":
        origin = "generated: the directory was empty"
    elif verdict.kind == "intact" and manifest is not None:
        if read_valid_manifest(root, profile, ids, [b.id for b in bundles], key_type) is not None:
            reason = "every certificate matches its manifest's fingerprint and every key its"
            return _certset(root, manifest, f"reused: {verdict.reason} ({reason} certificate)")
        keys = "" if key_type == DEFAULT_KEY_TYPE else f" of {key_type} keys"
        origin = f"regenerated: it held {verdict.reason}, the {profile} set{keys} was asked for"
        _refuse_foreign_names(root, specs, bundles, verdict.owned())
    elif verdict.kind == "damaged":
        raise OutputDirError(
            f"{root} holds a damaged certificate set: {verdict.reason}; nothing was changed "
            "(certs --force regenerates it)"
        )
    else:
        raise OutputDirError(
            f"{root} is not empty and holds no certificate set this project made "
            f"({verdict.reason}); nothing was changed: use an empty directory, or certs "
            "--force to write the set there (files with the set's names are replaced)"
        )
    try:
        manifest = write_set(root, profile, specs, build(specs), bundles, key_type)
    except OSError as exc:
        raise OutputDirError(f"cannot write certificates to {root}: {exc.strerror}") from None
    certs = _certset(root, manifest, origin)
    # The old set's files the new one does not have: this project wrote them (its
    # manifest listed them), so they go with it; nothing else is ever deleted.
    kept = {MANIFEST} | {p.name for p in certs.bundles.values()}
    kept |= {p.name for c in certs for p in (c.cert, c.key, c.chain, c.key_and_chain, c.crl) if p}
    for name in sorted(verdict.owned() - kept):
        (root / name).unlink(missing_ok=True)
    return certs


def _refuse_foreign_names(root: Path, specs: tuple, bundles: tuple, owned: set[str]) -> None:
    """Refuse to replace a file the old set did not list (the user's, by elimination)."""
    names = [bundle_file(b) for b in bundles]
    for spec in specs:
        names += [f"{spec.id}{s}" for s in (".pem", ".key", ".chain.pem", ".key-and-chain.pem")]
        names.append(f"{spec.id}.crl.pem")
    for name in names:
        if (root / name).exists() and name not in owned:
            raise OutputDirError(
                f"{root / name} was not written by certs_gen and the new set would replace "
                "it; nothing was changed (certs --force replaces it)"
            )


def load(out_dir: str | os.PathLike[str]) -> CertSet:
    """Open a set written earlier, whatever its profile, without regenerating anything."""
    root = Path(out_dir).resolve()
    for profile, specs in PROFILES.items():
        bundles = [b.id for b in BUNDLES.get(profile, ())]
        manifest = read_valid_manifest(root, profile, [s.id for s in specs], bundles, None)
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


def _certset(root: Path, manifest: dict, origin: str = "") -> CertSet:
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
            key_type=row.get("key_type", DEFAULT_KEY_TYPE),
        )
    bundles = {b: root / name for b, name in manifest.get("bundles", {}).items()}
    key_type = manifest.get("key_type", DEFAULT_KEY_TYPE)
    return CertSet(
        root, manifest["profile"], manifest["generated_at"], creds, bundles, origin, key_type
    )
