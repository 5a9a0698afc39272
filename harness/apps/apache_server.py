"""Run Apache httpd in the foreground as a child of this process, and exit when it does.

    python -m harness.apps.apache_server APACHE2 -d SERVER_ROOT -f HTTPD_CONF

``harness.targets.process.start_server`` runs Python modules through
``harness.apps.launch``, which ties the process group to the harness (a pipe
watched for end-of-file, a parent-death signal). Replacing this process with
httpd (``exec``) would drop that guard, so httpd runs as a child instead, in
the same process group: stopping the group stops httpd (SIGTERM, httpd's
"stop now") and its children (the CGI daemon, the worker process). httpd's
output (its ErrorLog goes to stderr) is inherited unchanged.
"""

from __future__ import annotations

import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m harness.apps.apache_server APACHE2 [ARG ...]", file=sys.stderr)
        return 2
    try:
        return subprocess.call([*args, "-DFOREGROUND"])
    except OSError as exc:
        print(f"apache_server: cannot run {args[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
