"""The connection-state oracle: what each step of a state case should do, and why.

A pure function of the case and the recorded facts (the certificate files' contents, the
resolver probe, the run's clock), as ``matrix.oracle`` is; it never talks to a server and
never imports the reference server. Every step is judged the way SPEC section 9 says:

- the host is the one the step's SNI names (no name, or an unknown one: the default
  host), and the client is admitted or refused exactly as a fresh handshake under that
  host's policy and client CA would be (``matrix.oracle.server_verdict``);
- a Host header naming another virtual host changes nothing about the verdict: the
  request is served under the SNI host's policy, or refused with 421 Misdirected Request
  (RFC 9110 section 15.5.20; Apache's answer, docs/state.md);
- a session carried from an earlier step changes nothing either: a resumed session must
  never admit a client that a fresh handshake with the same credential would refuse,
  whatever happened in between (a reload, another host, another server). Whether the
  server resumes is its choice; the step shows the same verified identity or none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..dimensions import ServerConfig
from ..oracle import NO_CLIENT_CERT, OK, Expectation, Facts, server_verdict
from ..refusals import predict_refusal
from .model import DEFAULT_HOST, LOOPBACK, HostPolicy, ServerState, StateCase

MISDIRECTED = "misdirected"  # HTTP 421: the server will not answer this Host on this connection


@dataclass(frozen=True)
class StepExpectation(Expectation):
    """One step's expectation: ``matrix.oracle.Expectation`` plus what the application
    must be told on ``ok``.

    ``served``: the acceptable values of ``MTLS_VIRTUAL_HOST`` (the SNI host's name and
    every host configured with the same policy and CA, ``_default_`` for the default);
    ``served_policy``: that policy's label. ``sni``: the ``SSL_TLS_SNI`` value (None: the
    variable is absent). ``verified``: whether ``SSL_CLIENT_VERIFY`` is ``SUCCESS`` with
    the client's certificate variables. ``carried``: the index of the step whose session
    is offered, None for a fresh handshake.
    """

    served: tuple[str, ...] = ()
    served_policy: str = ""
    sni: str | None = None
    verified: bool = False
    carried: int | None = None


@dataclass(frozen=True)
class StateExpectation:
    """Every step's expectation; the case's verdict is about all of them."""

    steps: tuple[StepExpectation, ...]

    @property
    def last(self) -> StepExpectation:
        return self.steps[-1]

    def to_json(self) -> dict[str, Any]:
        """results.json: the last step's fields (the step the case asks about) plus
        every step's, so reports read ``outcome`` and ``reason`` as for any case."""
        return {**asdict(self.last), "steps": [asdict(s) for s in self.steps]}


def predict(case: StateCase, facts: Facts) -> StateExpectation:
    """The expectation of every step of ``case`` (SPEC section 9)."""
    current = list(case.servers)
    steps = []
    for step in case.steps:
        if step.reload is not None:
            current[step.server] = step.reload
        server = current[step.server]
        steps.append(predict_step(case, server, step.sni, step.host, facts, step.offer))
    return StateExpectation(tuple(steps))


def predict_step(
    case: StateCase,
    server: ServerState,
    sni: str | None,
    host_header: str | None,
    facts: Facts,
    offer: int | None = None,
) -> StepExpectation:
    """One connection to ``server`` sending ``sni`` and the Host header ``host_header``."""
    name, policy = server.host_for(sni)
    v = server_verdict(host_config(server, policy), case.client, LOOPBACK, facts)
    refusal = predict_refusal(v.cause, case.tls)
    asks = None if policy.policy == "ignore" else ()
    reason = v.reason
    where = "the default host" if name == DEFAULT_HOST else f"virtual host {name}"
    sent = "no SNI" if sni is None else f"SNI {sni}"
    reason = f"{sent} selects {where} ({policy.label}); {reason}"
    if offer is not None:
        reason += f"; the session of step {offer + 1} is offered and changes nothing"
    alternatives = v.alternatives
    if v.outcome == OK and other_host(server, name, host_header):
        alternatives = (*alternatives, MISDIRECTED)
        reason += f"; Host {host_header} names another host: 421, or served as {where}"
    verified = v.outcome == OK and policy.policy != "ignore" and case.client != NO_CLIENT_CERT
    return StepExpectation(
        v.outcome,
        reason,
        LOOPBACK,
        v.cause,
        alternatives,
        refusal,
        asks,
        served=same_policy_hosts(server, policy),
        served_policy=policy.label,
        sni=sni,
        verified=verified,
        carried=offer,
    )


def host_config(server: ServerState, policy: HostPolicy) -> ServerConfig:
    """The standard oracle's view of one host: a server configured with its policy."""
    return ServerConfig(
        server.adapter, policy.policy, server.bind, server.server_cert, policy.trust
    )


def same_policy_hosts(server: ServerState, policy: HostPolicy) -> tuple[str, ...]:
    """Every host name of ``server`` configured exactly as ``policy`` (the default host as
    ``_default_``): serving the request as any of them is serving it under that policy."""
    names = [DEFAULT_HOST] if server.default == policy else []
    names += [n for n, p in server.hosts if p == policy]
    return tuple(names)


def other_host(server: ServerState, served: str, host_header: str | None) -> bool:
    """Whether the Host header names a virtual host with another configuration than
    the one the SNI selected (a port or trailing dot is ignored)."""
    if host_header is None:
        return False
    wanted = host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
    wanted = wanted.rstrip(".").lower()
    _, served_policy = server.host_for(None if served == DEFAULT_HOST else served)
    for name, policy in server.hosts:
        if name.lower() == wanted:
            return policy != served_policy
    return False
