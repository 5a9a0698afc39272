"""One generated certificate's verdicts: every endpoint against the oracle, and every
endpoint against Apache httpd variable by variable (SPEC section 11).

Differences are values (``Difference``), never prose: the report and the tests read
their fields. Apache is the truth for the environ where it is among the endpoints; the
oracle (``predict`` for admission, ``matrix.environ`` for the variables) is checked
against every endpoint, Apache included, so an oracle that is wrong shows too.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from matrix.environ import check_environ, days_left, expected_certificate_variables

from .endpoints import ADMITTED, Answer, Endpoint
from .predict import Prediction

APACHE = "apache"


@dataclass(frozen=True)
class Difference:
    """``subject`` departs from ``truth`` ("oracle" or an endpoint's name) on
    ``variable`` ("admission" for the verdict itself)."""

    subject: str
    truth: str
    variable: str
    expected: object
    observed: object

    def to_json(self) -> dict:
        return {
            "subject": self.subject,
            "truth": self.truth,
            "variable": self.variable,
            "expected": self.expected,
            "observed": self.observed,
        }


def differences(
    prediction: Prediction,
    answers: dict[str, Answer],
    endpoints: list[Endpoint],
    cert_file: Path,
    sent_chain: list[str],
    window: tuple[dt.datetime, dt.datetime],
) -> list[Difference]:
    """Every difference for one certificate. ``window`` is (before the first request,
    after the last): SSL_CLIENT_V_REMAIN may be either day's count."""
    out: list[Difference] = []
    expected = None
    if prediction.outcome == ADMITTED:
        expected = expected_certificate_variables(cert_file, sent_chain, window)
    for endpoint in endpoints:
        answer = answers[endpoint.name]
        if not prediction.accepts(answer.outcome):
            out.append(
                Difference(
                    endpoint.name,
                    "oracle",
                    "admission",
                    f"{prediction.outcome} ({prediction.reason})",
                    f"{answer.outcome} ({answer.detail})" if answer.detail else answer.outcome,
                )
            )
        elif expected is not None and answer.outcome == ADMITTED:
            for problem in check_environ(dict(answer.environ), expected, endpoint.provides):
                variable, want, got = problem.variable, problem.expected, problem.observed
                out.append(Difference(endpoint.name, "oracle", variable, want, got))
    apache = answers.get(APACHE)
    if apache is None:
        return out
    same_count = _remain_stable(cert_file, window)
    for endpoint in endpoints:
        if endpoint.name == APACHE:
            continue
        answer = answers[endpoint.name]
        if answer.outcome != apache.outcome:
            if not prediction.nonconforming:  # a strict target may refuse it (predict)
                why = Difference(endpoint.name, APACHE, "admission", apache.outcome, answer.outcome)
                out.append(why)
            continue
        want = _client_variables(apache.environ, endpoint)
        got = _client_variables(answer.environ, endpoint)
        if not same_count:  # the whole days left changed between the two answers
            want.pop("SSL_CLIENT_V_REMAIN", None), got.pop("SSL_CLIENT_V_REMAIN", None)
        for name in sorted(set(want) | set(got)):
            if want.get(name) != got.get(name):
                out.append(Difference(endpoint.name, APACHE, name, want.get(name), got.get(name)))
    return out


def _remain_stable(cert_file: Path, window: tuple[dt.datetime, dt.datetime]) -> bool:
    """Whether mod_ssl's SSL_CLIENT_V_REMAIN is the same at both ends of ``window``.

    The endpoints are asked one after the other; the count steps at notAfter's time of
    day, so two servers asked a fraction of a second apart can rightly differ by one when
    a step falls between them. Only then is the variable left out of the comparison with
    Apache (the oracle still holds each answer to one of the two counts). The step is
    mod_ssl's, in whole seconds (``matrix.environ.days_left``): counted with microseconds
    it falls one second early, and an example that crossed the real step was compared as
    if it had not (reference 1, Apache 0, for a notAfter one day after the run's start).
    """
    try:
        with warnings.catch_warnings():  # generated serials may be negative on purpose
            warnings.simplefilter("ignore")
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return False
    not_after = cert.not_valid_after_utc
    return days_left(not_after, window[0]) == days_left(not_after, window[1])


def _client_variables(environ: dict, endpoint: Endpoint) -> dict:
    """SSL_CLIENT_* as mod_ssl would compare them: an empty SSL_CLIENT_CERT is no
    certificate; a variable the endpoint does not provide is left out."""
    out = {k: v for k, v in environ.items() if k.startswith("SSL_CLIENT_")}
    if out.get("SSL_CLIENT_CERT") == "":
        del out["SSL_CLIENT_CERT"]
    return {k: v for k, v in out.items() if endpoint.provides(k)}
