"""``python -m certs_gen OUT_DIR [--profile standard|extended] [--force]``."""

from __future__ import annotations

import argparse
import sys

from . import PROFILES, CertSet, CertsGenError, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m certs_gen",
        description="Generate (or reuse) a certificate set for mutual-TLS testing.",
    )
    parser.add_argument("out_dir", help="directory to write PEM files and manifest.json into")
    parser.add_argument("--profile", default="standard", choices=list(PROFILES))
    parser.add_argument("--force", action="store_true", help="regenerate even if a set is there")
    args = parser.parse_args(argv)
    try:
        certs = generate(args.out_dir, profile=args.profile, force=args.force)
    except CertsGenError as exc:
        print(f"certs_gen: error: {exc}", file=sys.stderr)
        return 2
    print(table(certs))
    return 0


def table(certs: CertSet) -> str:
    rows = [("id", "role", "issuer", "identities", "valid from", "valid until")]
    for c in certs:
        rows.append(
            (
                c.id,
                c.role,
                c.issuer or "-",
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
