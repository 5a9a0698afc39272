"""Project-wide pytest wiring: the certificate set fixture and the matrix plugin."""

from __future__ import annotations

import pytest

import certs_gen

pytest_plugins = ["matrix.plugin"]


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> certs_gen.CertSet:
    """The standard set, generated once per test run (once per xdist worker)."""
    return certs_gen.generate(tmp_path_factory.mktemp("certs"), profile="standard")


@pytest.fixture(scope="session")
def extended_certs(tmp_path_factory: pytest.TempPathFactory) -> certs_gen.CertSet:
    return certs_gen.generate(tmp_path_factory.mktemp("certs-extended"), profile="extended")
