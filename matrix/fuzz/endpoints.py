"""The servers a fuzz run talks to, started once each, and the client that asks them.

A ``--target`` name is ``reference`` (both adapters), ``reference:builtin``,
``reference:pyopenssl``, ``apache``, or any ``package.module:factory`` the matrix takes
(harness.target.load_target), run on each of its adapters. Every endpoint is started
with SPEC section 2's ``optional`` policy on 127.0.0.1, the set's ``server`` credential
and ``ca`` as the client CA, and is asked over a fresh TLS connection per certificate.

The client is the standard library's (``http.client`` over an ``ssl`` context): the
matrix's own client (harness.client.TLSClient) loads credentials at OpenSSL's default
security level, which refuses to load the RSA 1024 key a generated certificate may hold
before any server can say what it thinks of it; here the client's level is 0, so the
verdict on a weak key is the server's.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.target import ServerSpec, TargetLoadError, load_target

ADMITTED, REFUSED = "ok", "refused"
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class Answer:
    outcome: str  # ADMITTED (HTTP 200 with a JSON object) or REFUSED (anything else)
    environ: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass
class Endpoint:
    """One target on one adapter; ``provides`` says which variables it claims."""

    name: str
    target: Any
    adapter: str
    handle: Any = None

    def start(self, spec: ServerSpec) -> None:
        self.handle = self.target.start(spec)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.stop()
            self.handle = None

    def provides(self, variable: str) -> bool:
        provides = getattr(self.target, "provides", None)
        return True if provides is None else bool(provides(self.adapter, variable))

    def ask(self, ca: Path, credential: Path, tls: str, timeout: float = 10.0) -> Answer:
        context = ssl.create_default_context(cafile=str(ca))
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = context.maximum_version = TLS_VERSIONS[tls]
        try:
            context.load_cert_chain(str(credential))
        except (ssl.SSLError, OSError) as exc:
            return Answer(REFUSED, detail=f"the client cannot load it: {exc}")
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.handle.port, timeout=timeout, context=context
        )
        try:
            connection.request("GET", "/", headers={"Connection": "close"})
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return Answer(REFUSED, detail=f"{type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            connection.close()
        if response.status != 200:
            return Answer(REFUSED, detail=f"HTTP {response.status}")
        try:
            environ = json.loads(body)
        except ValueError:
            return Answer(REFUSED, detail="HTTP 200 with a body that is not JSON")
        if not isinstance(environ, dict):
            return Answer(REFUSED, detail="HTTP 200 with JSON that is not an object")
        return Answer(ADMITTED, environ)


def resolve(names: list[str]) -> list[Endpoint]:
    """Endpoints for ``--target`` names; TargetLoadError (one line) for one that cannot run."""
    out: list[Endpoint] = []
    for name in names:
        if name in ("reference", "reference:builtin", "reference:pyopenssl"):
            from harness.targets.reference import ReferenceTarget

            adapters = ("builtin", "pyopenssl") if name == "reference" else (name.split(":")[1],)
            out += [Endpoint(f"reference:{a}", ReferenceTarget(), a) for a in adapters]
        elif name == "apache":
            from harness.targets.apache import ApacheTarget

            target = ApacheTarget()
            missing = target.installed()
            if missing is not None:
                raise TargetLoadError(f"--target apache: {missing}")
            out.append(Endpoint("apache", target, "mod_ssl"))
        else:
            target = load_target(name, search=(".",))
            out += [Endpoint(f"{name}:{a}", target, a) for a in target.adapters]
    seen = [e.name for e in out]
    if len(set(seen)) != len(seen):
        raise TargetLoadError(f"--target: a target is named twice ({', '.join(seen)})")
    return out
