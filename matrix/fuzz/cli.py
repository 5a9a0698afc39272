"""``mtls-matrix fuzz``: generated client certificates against the selected targets.

    mtls-matrix fuzz --target reference --target apache --budget 120 [--seed N] [--out DIR]

Writes ``DIR/fuzz.json`` (the run, and the shrunk finding with its PEM, a readable dump
and the seed) and prints a one-screen summary. Exit status 0 when nothing differed, 1
when a difference was found, 2 for bad usage (one line). The hypothesis example database
is ``DIR/hypothesis``: a finding is tried first on the next run with the same DIR.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import subprocess
import sys
from pathlib import Path

import certs_gen
from harness.capture import logger_level
from harness.target import TargetLoadError
from harness.usage import OneLineParser

from .endpoints import resolve
from .runner import Finding, Outcome, run

PROG = "mtls-matrix fuzz"
DEFAULT_OUT = "build/fuzz"
REPORT = "fuzz.json"


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        help="reference (both adapters), reference:builtin, reference:pyopenssl, apache, or "
        "package.module:factory; repeat for several (Apache is the truth for the environ)",
    )
    parser.add_argument("--budget", type=_positive(float), help="seconds of generation")
    parser.add_argument("--examples", type=_positive(int), help="certificates to present")
    parser.add_argument("--seed", type=int, help="makes a run repeatable (default: random)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory ({DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.budget is None and args.examples is None:
        args.budget = 60.0
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    # The reference server logs every refusal; a fuzz run refuses thousands on purpose.
    with logger_level("mtls_matrix", logging.CRITICAL):
        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            certs = certs_gen.generate(out / "certs")
            endpoints = resolve(args.target)
        except (certs_gen.CertsGenError, TargetLoadError, OSError) as exc:
            parser.error(str(exc).splitlines()[0])
        outcome = run(
            endpoints,
            (certs["server"].cert, certs["server"].key),
            (certs["ca"].cert, certs["ca"].key),
            out,
            budget=args.budget,
            examples=args.examples,
            seed_value=seed,
        )
        report = to_json(outcome, seed, [e.name for e in endpoints], args)
        (out / REPORT).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        print(summary(report, out / REPORT))
        return 1 if outcome.finding else 0


def to_json(outcome: Outcome, seed: int, targets: list[str], args: argparse.Namespace) -> dict:
    finding = outcome.finding
    return {
        "schema": 1,
        "seed": seed,
        "targets": targets,
        "budget_seconds": args.budget,
        "max_examples": args.examples,
        "examples": outcome.examples,
        "seconds": round(outcome.seconds, 1),
        "oracle_verdicts": outcome.verdicts,
        "differences": [] if finding is None else [d.to_json() for d in finding.differences],
        "finding": None if finding is None else _finding_json(finding),
        "replay": f"{PROG} {' '.join(f'--target {t}' for t in args.target)} "
        f"--seed {seed} --out {args.out}"
        + (f" --budget {args.budget:g}" if args.budget else "")
        + (f" --examples {args.examples}" if args.examples else ""),
    }


def _finding_json(finding: Finding) -> dict:
    return {
        "tls": finding.tls,
        "plan": repr(finding.plan),
        "oracle": {"outcome": finding.prediction.outcome, "reason": finding.prediction.reason},
        "answers": {
            name: {"outcome": a.outcome, "detail": a.detail, "environ": a.environ}
            for name, a in finding.answers.items()
        },
        "certificate_pem": finding.issued.pem,
        "chain_pem": list(finding.issued.chain),
        "dump": dump(finding.issued.cert),
    }


def dump(cert_file: Path) -> str:
    """``openssl x509 -text`` where the openssl command is installed, else cryptography's."""
    openssl = shutil.which("openssl")
    if openssl:
        result = subprocess.run(
            [openssl, "x509", "-noout", "-text", "-nameopt", "RFC2253", "-in", str(cert_file)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode == 0:
            return result.stdout
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    lines = [f"subject: {cert.subject.rfc4514_string()}", f"serial: {cert.serial_number}"]
    lines += [f"valid: {cert.not_valid_before_utc} .. {cert.not_valid_after_utc}"]
    lines += [f"extension: {e.oid.dotted_string} {e.value}" for e in cert.extensions]
    return "\n".join(lines) + "\n"


def summary(report: dict, path: Path) -> str:
    lines = [
        f"{PROG}: {report['examples']} certificates in {report['seconds']} s against "
        f"{', '.join(report['targets'])} (seed {report['seed']}); oracle verdicts "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["oracle_verdicts"].items())),
    ]
    if not report["differences"]:
        lines.append("no difference found")
    else:
        finding = report["finding"]
        lines.append(
            f"DIFFERENCE on the smallest certificate hypothesis found (TLS {finding['tls']}):"
        )
        for d in report["differences"][:12]:
            lines.append(
                f"  {d['subject']} vs {d['truth']}: {d['variable']}: expected "
                f"{d['expected']!r}, observed {d['observed']!r}"
            )
        if len(report["differences"]) > 12:
            lines.append(f"  ... {len(report['differences']) - 12} more in the report")
        lines.append(f"  plan: {finding['plan'][:300]}")
        lines.append(f"  replay: {report['replay']}")
    lines.append(f"report: {path}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
