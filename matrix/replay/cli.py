"""``python -m matrix.replay``: every corpus entry on its affected and fixed release.

    python -m matrix.replay [--only ID ...] [--out build/replay] [--venv-cache DIR]
        [--list] [--markdown docs/replay.md]

Exit 0 when every entry failed as stated on its affected release and passed on its fixed
one; 1 otherwise; 2 on bad usage or a malformed corpus (one line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.targets import compat
from harness.usage import OneLineParser
from matrix.progress import CommandProgress

from .corpus import CorpusError, Entry, load_corpus
from .run import AFFECTED, FIXED, Verdict, replay


def main(argv: list[str] | None = None, prog: str = "python -m matrix.replay") -> int:
    parser = OneLineParser(prog=prog, description="Replay public server bugs on their releases.")
    parser.add_argument("--only", nargs="+", metavar="ID", help="these entries only")
    parser.add_argument("--out", default="build/replay", help="results (default build/replay)")
    parser.add_argument("--corpus", help="another corpus file (default: the shipped one)")
    parser.add_argument("--venv-cache", metavar="DIR", help="the version axis's cache")
    parser.add_argument("--timeout", type=float, default=compat.TARGET_TIMEOUT)
    parser.add_argument("--list", action="store_true", help="list the entries and stop")
    parser.add_argument("--markdown", metavar="FILE", help="also write the verdicts table here")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    options = parser.parse_args(argv)
    try:
        entries = load_corpus(Path(options.corpus) if options.corpus else None)
    except CorpusError as exc:
        parser.error(str(exc))
    if options.only:
        unknown = sorted(set(options.only) - {e.id for e in entries})
        if unknown:
            parser.error(f"unknown entry {unknown[0]!r} (--list shows them)")
        entries = [e for e in entries if e.id in options.only]
    if options.list:
        for entry in entries:
            print(
                f"{entry.id:24} {entry.target:16} {entry.affected} -> {entry.fixed}  {entry.report}"
            )
        return 0
    out = Path(options.out)
    cache = Path(options.venv_cache) if options.venv_cache else None
    verdicts: list[Verdict] = []
    progress = CommandProgress(2 * len(entries), "replay", quiet=options.quiet)
    try:
        with progress:
            for entry in entries:
                for role in (AFFECTED, FIXED):
                    print(f"== replay {entry.id}: {role} {entry.package}", flush=True)
                    verdict = replay(entry, role, out / entry.id, cache, options.timeout)
                    verdicts.append(verdict)
                    progress.advance(failed=not verdict.ok)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(
        json.dumps({"verdicts": [v.to_json() for v in verdicts]}, indent=1) + "\n"
    )
    table = markdown(entries, verdicts)
    print("\n" + table)
    if options.markdown:
        Path(options.markdown).write_text(table)
    return 0 if verdicts and all(v.ok for v in verdicts) else 1


def markdown(entries: list[Entry], verdicts: list[Verdict]) -> str:
    """The verdicts as a Markdown table, an entry a row (docs/replay.md holds one)."""
    by = {(v.entry, v.role): v for v in verdicts}
    lines = [
        "| entry | report | affected | verdict | fixed | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for e in entries:
        cells = []
        for role, release in ((AFFECTED, e.affected), (FIXED, e.fixed)):
            v = by.get((e.id, role))
            mark = "not run" if v is None else ("✔ " if v.ok else "✘ ") + v.observed
            cells += [f"{e.package} {release}", mark.replace("|", "\\|")]
        lines.append(f"| `{e.id}` | [{e.project}]({e.report}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
