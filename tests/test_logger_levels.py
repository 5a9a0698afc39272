"""Commands that quiet the reference server's refusal lines leave the logger as found.

``mtls-matrix fuzz`` and the real-clients table refuse on purpose and quiet the
reference's logger while they run. Run in-process (tests, a notebook), a level left
behind silenced the server for whatever ran next: CI's full suite lost the per-path
handshake-timeout line after tests/test_fuzz.py had run.
"""

from __future__ import annotations

import logging

import pytest

from matrix import clients
from matrix.fuzz import cli as fuzz_cli


@pytest.fixture
def levels():
    names = ("mtls_matrix", "mtls_matrix.reference")
    before = {n: logging.getLogger(n).level for n in names}
    yield before
    for n, level in before.items():
        logging.getLogger(n).setLevel(level)


def current(levels) -> dict[str, int]:
    return {n: logging.getLogger(n).level for n in levels}


def test_fuzz_restores_the_level_when_it_stops_on_bad_input(tmp_path, levels, capsys):
    with pytest.raises(SystemExit) as stopped:
        fuzz_cli.main(["--target", "no.such.module:target", "--examples", "1",
                       "--out", str(tmp_path / "fuzz")])  # fmt: skip
    assert stopped.value.code == 2
    assert current(levels) == levels
    assert logging.getLogger("mtls_matrix.reference").isEnabledFor(logging.WARNING)


def test_clients_restores_the_level_after_its_table(tmp_path, levels, capsys, certs):
    code = clients.main(["--client", "curl", "--certs-dir", str(certs.root),
                         "--out", str(tmp_path / "clients.json")])  # fmt: skip
    assert code in (0, 1)  # the table's verdict is not the point here
    assert current(levels) == levels
    assert logging.getLogger("mtls_matrix.reference").isEnabledFor(logging.WARNING)
