"""Which CA names a target's CertificateRequest must list: what the target declares.

The reference adapters list none (Python's ssl module cannot), Apache's mod_ssl lists the
subjects of its client CA file; a target that declares nothing is recorded, not checked.
The expected names are written out here from the certificate files' subjects as trustme
makes them, not taken from the runner.
"""

from __future__ import annotations

import datetime as dt

import pytest

from matrix.dimensions import Case
from matrix.oracle import predict
from matrix.resolver import probe
from matrix.runner import MatrixEnv, build_facts, ca_names_declared, declared_ca_names


class Declares:
    name = "declares"
    adapters = ("builtin", "pyopenssl", "mod_ssl")
    ca_names = {"builtin": "none", "mod_ssl": "client-ca"}  # noqa: RUF012


@pytest.fixture(scope="module")
def env(certs):
    facts = build_facts(certs, probe(("127.0.0.1",)), dt.datetime.now(dt.timezone.utc))
    return MatrixEnv(certs, facts, Declares())


def expected_names(env, adapter: str, policy: str = "required"):
    case = Case("t", adapter, policy, "127.0.0.1", "127.0.0.1", "localhost", "server")
    return declared_ca_names(predict(case, env.facts), case, env).ca_names


def test_none_declared_means_an_empty_list(env):
    assert expected_names(env, "builtin") == ()


def test_client_ca_declared_means_the_ca_files_subjects(env):
    assert expected_names(env, "mod_ssl") == ("OU=ca,O=mtls-matrix",)


def test_an_undeclared_adapter_is_not_checked(env):
    assert expected_names(env, "pyopenssl") is None
    assert expected_names(env, "pyopenssl", policy="ignore") is None
    assert ca_names_declared(env.target, "pyopenssl") is None
    assert ca_names_declared(env.target, "mod_ssl") == "client-ca"


def test_ignore_asks_for_no_certificate_whatever_is_declared(env):
    assert expected_names(env, "mod_ssl", policy="ignore") is None
    assert expected_names(env, "builtin", policy="ignore") is None
