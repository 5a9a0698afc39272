"""SSL_CLIENT_V_REMAIN around its steps: the reference, the oracle and Apache httpd agree.

mod_ssl's count is the whole days from the current whole second to notAfter, rounded
down, "0" when none is left; measured on httpd 2.4.71 / OpenSSL 3.0.22 with each request
inside the whole second it was aimed at (docs/spec.md section 5). ``MEASURED`` is that
measurement, seconds left -> value; the tests hold the reference (harness.reference.certinfo)
and the oracle (matrix.environ) to it at exact instants, and the running servers (both
reference adapters, and Apache where it is installed) to it at instants a minute or more
away from a step.

The fuzz comparison (matrix.fuzz.compare) leaves the variable out only when mod_ssl's own
count stepped while the endpoints were asked; a one-day difference inside one whole second
is reported. Its step used to be counted with microseconds, one second early, which let a
reference asked before the step (1) and Apache asked after it (0) show as a difference.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.client import TLSClient
from harness.reference.certinfo import client_variables
from harness.target import ServerSpec
from harness.targets.apache import ApacheTarget
from harness.targets.reference import ReferenceTarget
from matrix.environ import expected_certificate_variables
from matrix.fuzz.compare import differences
from matrix.fuzz.endpoints import ADMITTED, Answer, Endpoint
from matrix.fuzz.issue import Issuer
from matrix.fuzz.plan import Attribute, CertPlan, Extensions
from matrix.fuzz.predict import Prediction

UTC = dt.timezone.utc
DAY, HOUR, MINUTE = 86400, 3600, 60
V_REMAIN = "SSL_CLIENT_V_REMAIN"

# Measured: notAfter - now in whole seconds -> httpd 2.4.71's SSL_CLIENT_V_REMAIN (the
# reference's two adapters answered the same; the command is in docs/spec.md section 5).
MEASURED = {
    1: "0",
    2: "0",
    HOUR: "0",
    DAY // 2: "0",
    DAY - HOUR: "0",
    DAY - MINUTE: "0",
    DAY - 1: "0",
    DAY: "1",
    DAY + 1: "1",
    DAY + MINUTE: "1",
    DAY + HOUR: "1",
    2 * DAY - 1: "1",
    2 * DAY: "2",
    2 * DAY + 1: "2",
}
# notAfter in UTCTime and in GeneralizedTime, at no round time of day.
NOT_AFTERS = (
    dt.datetime(2049, 12, 30, 13, 37, 42, tzinfo=UTC),
    dt.datetime(2999, 7, 14, 13, 37, 42, tzinfo=UTC),
)


def _issue(certs, tmp_path, not_after: dt.datetime, name: str):
    plan = CertPlan(
        ((Attribute("CN", name),),),
        dt.datetime(2000, 1, 1, tzinfo=UTC),
        not_after,
        7,
        (),
        "ecdsa-p256",
        Extensions(),
    )
    return Issuer(certs["ca"].cert, certs["ca"].key).issue(plan, tmp_path, name=name)


def _der(cert_file) -> bytes:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module", params=NOT_AFTERS, ids=("utctime", "generalizedtime"))
def fixed(request, certs, tmp_path_factory):
    """A certificate whose notAfter is ``request.param``: (its file, notAfter)."""
    out = tmp_path_factory.mktemp("remain")
    return _issue(certs, out, request.param, f"na-{request.param.year}").cert, request.param


@pytest.mark.parametrize("seconds_left", sorted(MEASURED))
@pytest.mark.parametrize("fraction", (0, 999_999), ids=("on-the-second", "late-in-it"))
def test_reference_and_oracle_count_as_mod_ssl(fixed, seconds_left, fraction):
    cert_file, not_after = fixed
    now = not_after - dt.timedelta(seconds=seconds_left) + dt.timedelta(microseconds=fraction)
    want = MEASURED[seconds_left]
    assert client_variables(_der(cert_file), None, now)[V_REMAIN] == want
    assert expected_certificate_variables(cert_file, [], (now,))[V_REMAIN] == {want}


@pytest.mark.parametrize("seconds_left", (0, -1, -DAY, -DAY - 1, -10 * DAY))
def test_none_left_is_zero_never_negative(fixed, seconds_left):
    """mod_ssl: ``diff > 0 ? diff : "0"`` (ssl_engine_vars.c). Not measurable over a
    verified handshake: httpd refuses an expired certificate, notAfter == now included,
    even under ``SSLVerifyClient optional_no_ca`` (measured, docs/spec.md section 5)."""
    cert_file, not_after = fixed
    now = not_after - dt.timedelta(seconds=seconds_left)
    assert client_variables(_der(cert_file), None, now)[V_REMAIN] == "0"
    assert expected_certificate_variables(cert_file, [], (now,))[V_REMAIN] == {"0"}


# Live: a minute or more from any step, so a request that takes less than that sees one
# value; the answer must be the count at the start or at the end of the request anyway.
LIVE = {
    DAY // 2: "0",
    DAY - HOUR: "0",
    DAY - MINUTE: "0",
    DAY + MINUTE: "1",
    DAY + HOUR: "1",
    DAY + DAY // 2: "1",
    2 * DAY - MINUTE: "1",
    2 * DAY + MINUTE: "2",
    10 * DAY + DAY // 2: "10",
}
SERVERS = ("builtin", "pyopenssl", "apache")


@pytest.fixture(scope="module")
def servers(certs):
    def spec(adapter: str) -> ServerSpec:
        return ServerSpec(
            adapter=adapter,
            client_check="optional",
            check_host=False,
            bind="127.0.0.1",
            certificate=certs["server"].cert,
            private_key=certs["server"].key,
            client_ca=certs["ca"].cert,
        )

    started = {}
    try:
        for adapter in ("builtin", "pyopenssl"):
            started[adapter] = ReferenceTarget().start(spec(adapter))
        if ApacheTarget().installed() is None:
            started["apache"] = ApacheTarget().start(spec("mod_ssl"))
        yield {name: f"https://127.0.0.1:{s.port}/" for name, s in started.items()}
    finally:
        for server in started.values():
            server.stop()


def _whole_days(not_after: dt.datetime, now: dt.datetime) -> str:
    """The measured rule, written out here so the test does not lean on the oracle."""
    left = not_after - now.replace(microsecond=0)
    return str(max(0, left // dt.timedelta(days=1)))


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("seconds_left", sorted(LIVE))
def test_servers_count_as_mod_ssl(servers, certs, tmp_path, server, seconds_left):
    if server not in servers:
        pytest.skip(str(ApacheTarget().installed()))
    start = dt.datetime.now(UTC).replace(microsecond=0)
    not_after = start + dt.timedelta(seconds=seconds_left)
    issued = _issue(certs, tmp_path, not_after, f"live-{seconds_left}")
    tls = TLSClient(certs["ca"].cert, issued.key_and_chain, timeout=10.0)
    try:
        before = dt.datetime.now(UTC)
        answer = tls.get(servers[server])
        after = dt.datetime.now(UTC)
    finally:
        tls.close()
    assert answer.outcome == "ok", answer.detail
    got = answer.environ[V_REMAIN]
    assert got in {_whole_days(not_after, t) for t in (before, after)}
    assert got in expected_certificate_variables(issued.cert, [], (before, after))[V_REMAIN]
    assert _whole_days(not_after, start) == LIVE[seconds_left]


class _RemainOnly:
    """A target that claims SSL_CLIENT_V_REMAIN only: the comparison of that one variable."""

    def provides(self, adapter: str, variable: str) -> bool:
        return variable == V_REMAIN


def _answer(remain: str) -> Answer:
    base = {"HTTPS": "on", "wsgi.url_scheme": "https", "SSL_CLIENT_VERIFY": "SUCCESS"}
    return Answer(ADMITTED, {**base, V_REMAIN: remain})


# (before, after) as seconds + microseconds after notAfter - 1 day; the reference is asked
# first and says 1, Apache second and says 0.
WINDOWS = {
    # mod_ssl's count stepped between the two (whole second X-86400 -> 1, X-86399 -> 0):
    # both answers are right, nothing to report against Apache.
    "crossed-the-step": ((0, 300_000), (1, 200_000), False),
    # one whole second, one count: a day apart is a real difference.
    "inside-one-second": ((0, 100_000), (0, 900_000), True),
    # a microsecond clock would see a step here (86400.5 s -> 86399.8 s): mod_ssl does not.
    "across-the-day-mark": ((-1, 500_000), (0, 200_000), True),
}


@pytest.mark.parametrize("case", sorted(WINDOWS))
def test_fuzz_compares_remain_only_when_mod_ssl_did_not_step(fixed, case):
    cert_file, not_after = fixed
    first, last, reported = WINDOWS[case]
    mark = not_after - dt.timedelta(days=1)
    window = tuple(mark + dt.timedelta(seconds=s, microseconds=us) for s, us in (first, last))
    endpoints = [
        Endpoint("reference:builtin", _RemainOnly(), "builtin"),
        Endpoint("apache", _RemainOnly(), "mod_ssl"),
    ]
    answers = {"reference:builtin": _answer("1"), "apache": _answer("0")}
    found = differences(Prediction(ADMITTED, "valid"), answers, endpoints, cert_file, [], window)
    against_apache = [
        (d.subject, d.variable, d.expected, d.observed) for d in found if d.truth == "apache"
    ]
    if reported:
        assert against_apache == [("reference:builtin", V_REMAIN, "0", "1")]
    else:
        assert against_apache == []
