"""``python -m certs_gen OUT_DIR [--profile standard|extended] [--key-type TYPE] [--force]``.

Prints the set's table and one line saying whether it was generated, reused or
regenerated, and why; refuses (exit 2, one line, nothing changed) a directory holding
anything but a set this project made, or a damaged set, unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys

from . import KEY_TYPES, PROFILES, CertSet, CertsGenError, generate
from .keys import DEFAULT_KEY_TYPE


def main(argv: list[str] | None = None, prog: str = "python -m certs_gen") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Generate (or reuse) a certificate set for mutual-TLS testing.",
    )
    parser.add_argument("out_dir", help="directory to write PEM files and manifest.json into")
    parser.add_argument("--profile", default="standard", choices=list(PROFILES))
    parser.add_argument(
        "--key-type",
        default=DEFAULT_KEY_TYPE,
        choices=KEY_TYPES,
        help="the key every credential holds, CAs included (default %(default)s); the "
        "extended profile's key-* and server-* credentials keep their own",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="regenerate whatever is there: a damaged set, or files this project did not write "
        "that have the set's names (nothing else is deleted)",
    )
    args = parser.parse_args(argv)
    try:
        certs = generate(
            args.out_dir, profile=args.profile, force=args.force, key_type=args.key_type
        )
    except CertsGenError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(table(certs))
    print(certs.origin)
    return 0


def table(certs: CertSet) -> str:
    rows = [("id", "role", "issuer", "key", "identities", "valid from", "valid until")]
    for c in certs:
        rows.append(
            (
                c.id,
                c.role,
                c.issuer or "-",
                c.key_type,
                " ".join(c.identities) or "-",
                c.not_before[:10],
                c.not_after[:10],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.append(f"{len(certs.credentials)} credentials ({certs.profile}) in {certs.root}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
