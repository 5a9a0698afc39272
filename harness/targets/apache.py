"""Apache httpd 2.4 with mod_ssl: the server whose environment variables SPEC section 5 names.

    pytest matrix --target harness.targets.apache:target

Each configuration gets a temporary ServerRoot holding its own ``httpd.conf``
(nothing of the system's configuration is read or touched), and runs as

    python -m harness.apps.apache_server /usr/sbin/apache2 -d ROOT -f ROOT/httpd.conf

under ``harness.targets.process.start_server`` (own process group, readiness
from httpd's own "resuming normal operations" line, stop by the group id).
The configuration, from the spec:

- ``Listen HOST:PORT`` and ``SSLEngine on`` for the main server: httpd cannot be
  told port 0, so the port comes from ``free_port`` (bind port 0 on the same
  address, read it, close), and a start that fails because the port was taken
  meanwhile ("Address already in use") is retried once with a new one.
- ``SSLVerifyClient none|optional|require`` for ignore/optional/required,
  ``SSLVerifyDepth 10``, ``SSLCACertificateFile`` (omitted when the spec has no
  client CA: httpd then decides, SPEC section 8), ``SSLCARevocationFile`` with
  ``SSLCARevocationCheck leaf`` when a CRL is configured (leaf, as the
  reference adapters check: ``VERIFY_CRL_CHECK_LEAF``; ``chain`` would also ask
  a CRL of every intermediate), the server's ``certificate_chain`` appended to
  its certificate file (how httpd >= 2.4.8 takes intermediates).
- ``SSLOptions +StdEnvVars +ExportCertData``; every path runs the CGI script
  ``harness/apps/cgi_env.py`` through mod_cgid, which returns the environment
  as JSON. CGI rather than mod_wsgi: mod_cgid ships with Debian's apache2 (no
  ``libapache2-mod-wsgi-py3``, which is built for one Python version), and the
  CGI environment *is* what mod_ssl exports, with no adapter in between.
- MPM event, worker pool, timeouts and mod_reqtimeout as Debian's package
  sets them (150 workers in processes of 25 threads, ``Timeout 300``, header
  read 20-40 s at 500 B/s); the error log goes to stderr (the harness reads it:
  readiness, and the reason of a failed start); no access log. Run as root
  (as in CI containers), httpd must switch to another user:
  ``User nobody`` / ``Group nogroup`` then, and the ServerRoot is readable by
  them; run as anyone else, httpd keeps that user.

- Per-path policies (SPEC section 9): ``<Location PREFIX>`` with its own
  ``SSLVerifyClient`` (mod_ssl asks after the handshake: TLS 1.3 post-handshake
  authentication, TLS 1.2 renegotiation); ``SSLCACertificateFile`` is then set
  under ``ignore`` too. One TLS version: ``SSLProtocol -all +TLSv1.x``.

httpd has no check of the client's host name: ``+host`` is unsupported. Its
TLS stack is OpenSSL through mod_ssl, named as its own adapter ``mod_ssl``.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, ClassVar

from harness.target import ServerSpec

from .base import ProcessTarget, checked, host_port
from .process import ServerProcess, ServerStartError, free_port, start_server

APACHE2 = os.environ.get("MTLS_MATRIX_APACHE2", "/usr/sbin/apache2")
MODULES = Path(os.environ.get("MTLS_MATRIX_APACHE_MODULES", "/usr/lib/apache2/modules"))
CGI_APP = Path(__file__).resolve().parents[1] / "apps" / "cgi_env.py"
VERIFY_CLIENT = {"ignore": "none", "optional": "optional", "required": "require"}
DEFAULT_VHOST = "_default_"  # MTLS_VIRTUAL_HOST of the default host (docs/state.md)
# Modules the configuration needs; unixd, log_config and so are built into Debian's httpd.
LOAD = (
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("reqtimeout_module", "mod_reqtimeout.so"),
    ("alias_module", "mod_alias.so"),
    ("cgid_module", "mod_cgid.so"),
    ("ssl_module", "mod_ssl.so"),
    ("env_module", "mod_env.so"),  # SetEnv MTLS_VIRTUAL_HOST per virtual host
)
# Worker pool and timeouts as Debian's apache2 package configures them (apache2.conf,
# mods-available/mpm_event.conf and reqtimeout.conf), so that what the resilience battery
# measures is httpd as installed, not a pool shrunk for the harness.
DEBIAN_DEFAULTS = (
    "Timeout 300",
    "KeepAlive On",
    "MaxKeepAliveRequests 100",
    "KeepAliveTimeout 5",
    "StartServers 2",
    "MinSpareThreads 25",
    "MaxSpareThreads 75",
    "ThreadLimit 64",
    "ThreadsPerChild 25",
    "MaxRequestWorkers 150",
    "MaxConnectionsPerChild 0",
    "RequestReadTimeout header=20-40,minrate=500",
    "RequestReadTimeout body=10,minrate=500",
)
# What the CGI application sees (SPEC section 5 and what mod_ssl adds; docs/apache.md).
PROVIDED = ("HTTPS", "wsgi.url_scheme", "SSL_*", "REMOTE_ADDR", "MTLS_VIRTUAL_HOST")


RELOAD_TIMEOUT = 30.0  # seconds for httpd to re-read its configuration and serve again
READY = re.compile(r"AH00489: .* resuming normal operations")


class ApacheServer:
    """A running httpd: the process handle, plus its ServerRoot removed on stop."""

    def __init__(self, process: ServerProcess, root: Path, port: int | None = None) -> None:
        self.process = process
        self.root = root
        self._port = process.port if port is None else port
        self.host = process.host
        self.port = process.port
        # A handle dropped without stop(): the process's own finaliser kills httpd, this
        # one removes the ServerRoot.
        self._remove_root = weakref.finalize(self, shutil.rmtree, root, True)

    def reload(self, spec: ServerSpec) -> None:
        """SPEC section 9: a new configuration for the running httpd, on the same port.

        ``apache2 -k restart`` (SIGHUP through the PidFile: httpd's "restart now", which
        ends its children and starts new ones with the re-read configuration, so no
        connection after this returns meets the old one; a graceful restart lets old
        children accept a while longer). Returns once httpd logs that it serves again.
        Raises ServerStartError (one line) when it does not within RELOAD_TIMEOUT.
        """
        write_server_root(self.root, spec, self._port)
        ready = threading.Event()

        def listen(line: str) -> None:
            if READY.search(line):
                ready.set()

        self.process.listeners.append(listen)
        try:
            conf = self.root / "httpd.conf"
            done = subprocess.run(
                [APACHE2, "-d", str(self.root), "-f", str(conf), "-k", "restart"],
                capture_output=True,
                text=True,
                timeout=RELOAD_TIMEOUT,
                check=False,
            )
            if done.returncode != 0:
                why = " ".join((done.stderr or done.stdout).split())[:200]
                raise ServerStartError(f"apache: restart failed: {why}")
            if not ready.wait(RELOAD_TIMEOUT):
                raise ServerStartError(
                    f"apache: not serving within {RELOAD_TIMEOUT:g} s of a restart"
                )
        finally:
            self.process.listeners.remove(listen)

    def stop(self) -> None:
        try:
            self.process.stop()
        finally:
            self._remove_root()

    def __getattr__(self, name: str) -> Any:  # pid, output(), alive() ... of the process
        return getattr(self.process, name)


class ApacheTarget(ProcessTarget):
    name = "apache"
    package = "apache2"
    module = "harness.apps.apache_server"
    adapters = ("mod_ssl",)
    # mod_ssl lists the subjects of SSLCACertificateFile in its CertificateRequest
    ca_names: ClassVar[dict[str, str]] = {"mod_ssl": "client-ca"}
    tls_stack = "OpenSSL through mod_ssl"
    provided: ClassVar[dict[str, tuple[str, ...]]] = {"mod_ssl": PROVIDED}
    ready = r"AH00489: .* resuming normal operations"
    host_check_reason = (
        "has no check of the client's host name (SSLVerifyClient verifies the chain only)"
    )
    chain_unsupported = None
    crl_unsupported = None
    # name-based <VirtualHost>s with SSLVerifyClient and SSLCACertificateFile per host
    # and a restart with a rewritten configuration (ApacheServer.reload)
    extra_features = frozenset({"sni-hosts", "reload"})
    workers = 150  # MaxRequestWorkers (DEBIAN_DEFAULTS): the battery also tries workers + 1

    @property
    def features(self) -> frozenset[str]:
        # Per-directory SSLVerifyClient in a <Location> per path, and SSLProtocol.
        return super().features | {"per-path", "tls-version"}

    def installed(self) -> str | None:
        if not os.access(APACHE2, os.X_OK):
            return f"{APACHE2} not found (apt-get install apache2)"
        missing = [f for _, f in LOAD if not (MODULES / f).is_file()]
        if missing:
            return f"{', '.join(missing)} not in {MODULES} (apt-get install apache2)"
        return None

    def versions(self) -> dict[str, str]:
        try:
            out = subprocess.run(
                [APACHE2, "-v"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        first = out.splitlines()[0] if out else ""
        return {"apache2": first.partition(":")[2].strip() or "not installed"}

    def start(self, spec: ServerSpec) -> ApacheServer:
        try:
            return self._start_once(spec)
        except ServerStartError as exc:
            if "Address already in use" not in str(exc):
                raise
            return self._start_once(spec)  # the picked port was taken meanwhile: once more

    def _start_once(self, spec: ServerSpec) -> ApacheServer:
        base = tempfile.gettempdir()
        if _run_as() and not _world_executable(Path(base)):
            base = "/tmp"  # httpd's User must reach the CGI script (a TMPDIR under /root)
        root = Path(tempfile.mkdtemp(prefix="mtls-apache-", dir=base))
        try:
            port = free_port(spec.bind)
            write_server_root(root, spec, port)
            process = self._run(spec, root, port)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return ApacheServer(process, root, port)

    def _run(self, spec: ServerSpec, root: Path, port: int) -> ServerProcess:
        return start_server(
            self.name,
            self.module,
            [APACHE2, "-d", str(root), "-f", str(root / "httpd.conf")],
            self.ready,
            host=spec.bind,
            port=port,
            cwd=root,
        )

    def command(self, spec: ServerSpec) -> tuple[list[str], int | None]:
        raise NotImplementedError("ApacheTarget.start writes a ServerRoot instead")


def write_server_root(root: Path, spec: ServerSpec, port: int) -> None:
    """httpd.conf, the server's certificate file and the CGI script, in ``root``."""
    user = _run_as()
    if user:  # httpd's User reads the script; the private key is read before the switch
        root.chmod(0o755)
    cert = Path(spec.certificate)
    chain = getattr(spec, "certificate_chain", None)
    if chain is not None:  # httpd >= 2.4.8 reads intermediates from the certificate file
        try:
            parts = [cert.read_bytes(), Path(chain).read_bytes()]
        except OSError as exc:
            raise ServerStartError(f"apache: cannot read {exc.filename}: {exc.strerror}") from None
        cert = root / "server.pem"
        cert.write_bytes(b"\n".join(p.rstrip(b"\n") for p in parts) + b"\n")
    script = root / "env.cgi"
    script.write_text(f"#!{_interpreter(user)}\n" + CGI_APP.read_text())
    script.chmod(0o755)
    (root / "httpd.conf").write_text(httpd_conf(root, spec, port, cert, user))


def httpd_conf(root: Path, spec: ServerSpec, port: int, cert: Path, user: str | None) -> str:
    """The whole configuration; every path inside ``root`` or named by the spec."""
    lines = [f"LoadModule {name} {MODULES / file}" for name, file in LOAD]
    if user:
        lines += [f"User {user}", f"Group {_group_of(user)}"]
    lines += [
        f'ServerRoot "{root}"',
        f'DefaultRuntimeDir "{root}"',
        f'PidFile "{root}/httpd.pid"',
        f'ScriptSock "{root}/cgid.sock"',
        "ServerName localhost",
        "ErrorLog /dev/stderr",
        "LogLevel notice ssl:info",
        *DEBIAN_DEFAULTS,
        f"Listen {host_port(spec.bind, port)}",
        "SSLSessionCache none",
    ]
    tls_version = getattr(spec, "tls_version", None)
    if tls_version is not None:  # SSLProtocol's names: TLSv1.2, TLSv1.3
        lines.append(f"SSLProtocol -all +{tls_version}")
    lines += [
        f'<Directory "{root}">',
        "    Require all granted",
        "</Directory>",
    ]
    hosts = getattr(spec, "sni_hosts", ())
    if not hosts:
        lines += host_lines(root, spec, cert, spec.client_check, spec.client_ca, DEFAULT_VHOST)
        return "\n".join(lines) + "\n"
    # SNI virtual hosts (SPEC section 9): name-based <VirtualHost>s on the one address;
    # the first is the default host (httpd serves it for no SNI or an unknown name).
    address = host_port(spec.bind, port)
    default = host_lines(root, spec, cert, spec.client_check, spec.client_ca, DEFAULT_VHOST)
    lines += [f"<VirtualHost {address}>", "ServerName localhost", *default, "</VirtualHost>"]
    for host in hosts:
        body = host_lines(root, spec, cert, host.client_check, host.client_ca, host.name)
        lines += [f"<VirtualHost {address}>", f"ServerName {host.name}", *body, "</VirtualHost>"]
    return "\n".join(lines) + "\n"


def host_lines(
    root: Path,
    spec: ServerSpec,
    cert: Path,
    client_check: str,
    client_ca: Path | None,
    name: str | None,
) -> list[str]:
    """mod_ssl and the CGI application for the main server or one virtual host; ``name``
    goes to the application as ``MTLS_VIRTUAL_HOST`` (docs/state.md)."""
    lines = [
        "SSLEngine on",
        f'SSLCertificateFile "{cert}"',
        f'SSLCertificateKeyFile "{spec.private_key}"',
        f"SSLVerifyClient {VERIFY_CLIENT[client_check]}",
        "SSLVerifyDepth 10",
        "SSLOptions +StdEnvVars +ExportCertData",
    ]
    path_policies = getattr(spec, "path_policies", ())
    if client_ca is not None and (client_check != "ignore" or path_policies):
        lines.append(f'SSLCACertificateFile "{client_ca}"')
    crl = getattr(spec, "crl", None)
    if crl is not None:
        lines += [f'SSLCARevocationFile "{crl}"', "SSLCARevocationCheck leaf"]
    if name is not None:
        lines.append(f"SetEnv MTLS_VIRTUAL_HOST {name}")
    lines.append(f'ScriptAliasMatch "^/" "{root}/env.cgi"')
    for prefix, check in path_policies:  # SPEC section 9: per-directory SSLVerifyClient
        lines += [
            f'<Location "{prefix}">',
            f"    SSLVerifyClient {VERIFY_CLIENT[check]}",
            "    SSLVerifyDepth 10",
            "</Location>",
        ]
    return lines


def _run_as() -> str | None:
    """None when httpd keeps our user; as root, the unprivileged user httpd must switch to."""
    if os.geteuid() != 0:
        return None
    for name in ("nobody", "www-data", "daemon"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ServerStartError("running as root and no unprivileged user (nobody) to run httpd as")


def _interpreter(user: str | None) -> str:
    """A Python 3 that httpd's ``User`` can run: ours, or else the system's.

    The script uses the standard library only, so any Python 3 serves. Ours may be
    out of reach of ``nobody`` (a pyenv build under /root, mode 0700).
    """
    candidates = [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]
    for path in candidates if user else candidates[:1]:
        if _world_executable(Path(path)):
            return path
    if not user:
        return sys.executable
    raise ServerStartError(
        f"no Python 3 that user {user} may execute for the CGI script (tried "
        + ", ".join(candidates)
        + ")"
    )


def _world_executable(path: Path) -> bool:
    """The file and every directory above it grant execute to others."""
    try:
        real = path.resolve(strict=True)
        return all(p.stat().st_mode & 0o001 for p in (real, *real.parents))
    except OSError:
        return False


def _group_of(user: str) -> str:
    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def target() -> ApacheTarget:
    return checked(ApacheTarget())
