"""The README's example target against the extended profile's distinguished-name cases.

The recipe test (test_readme_recipe.py) installs the project and runs the standard
profile; this runs the same Python block, from a clone, on the subjects a first
target gets wrong: a multi-valued RDN (``OU=client+CN=...``: the example answered
HTTP 500 to it, issue 18), RFC 2253 specials, and control characters (mod_ssl's
escaping). Expected values come from the certificate files (the matrix's oracle).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from test_readme_recipe import recipe_blocks

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_example_serves_every_distinguished_name(tmp_path):
    python = [b for lang, b in recipe_blocks() if lang == "python"]
    name = re.match(r"# (\S+\.py)\b", python[0]).group(1)
    (tmp_path / name).write_text(python[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "matrix", "run", "--target", f"{name[:-3]}:target",
         "--out", "out", "--profile", "extended", "-k", "dn- and tls:1.3"],
        cwd=tmp_path, env=dict(env, PYTHONPATH=str(REPO)), capture_output=True, text=True,
        timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    cases = json.loads((tmp_path / "out" / "results.json").read_text())["cases"]
    clients = {c["client"] for c in cases if c["status"] == "pass"}
    assert {"dn-multi-rdn", "dn-specials", "dn-control"} <= clients, clients
    multi = [c for c in cases if c["client"] == "dn-multi-rdn" and c["policy"] != "ignore"]
    assert multi and all(c["environ"]["SSL_CLIENT_S_DN_CN"] == "dn-multi-rdn" for c in multi)
