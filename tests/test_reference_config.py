"""Bad configurations are refused before anything listens (SPEC section 2).

Each case is checked twice: from Python (the exception type and a one-line message
naming the problem) and from the command line (exit status 2, one line on stderr,
no traceback).
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from harness.reference import (
    ConfigError,
    ConfigFileError,
    ReferenceServer,
    StartError,
    adapter_from_config,
    make_adapter,
    parse_bind,
)

CLI_TIMEOUT = 30  # seconds; a refused configuration exits long before this
CLI_PARALLEL = 3  # interpreters started at once: enough to hide start-up, not a CPU storm


@dataclass
class Bad:
    """One bad configuration, as make_adapter keywords and as CLI options.

    Values written ``<name>`` stand for the file of that name in the ``files``
    fixture (real paths exist only once the certificates are generated).
    """

    id: str
    error: type[Exception]
    fragments: tuple[str, ...]  # each must appear in the message (file names, values)
    settings: dict = field(default_factory=dict)  # overrides of the good settings
    argv: dict = field(default_factory=dict)  # overrides of the good CLI options

    def resolve(self, files: dict[str, str]) -> Bad:
        def sub(value):
            if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
                return files[value[1:-1]]
            return value

        return Bad(
            self.id,
            self.error,
            tuple(sub(f) for f in self.fragments),
            {k: sub(v) for k, v in self.settings.items()},
            {k: sub(v) for k, v in self.argv.items()},
        )


CASES = [
    Bad(
        "host-check-with-ignore",
        ConfigError,
        ("client_check_host", "ignore"),
        {"client_check": "ignore", "client_check_host": True},
        {"--client-check": "ignore", "--check-host": True},
    ),
    Bad(
        "optional-without-client-ca",
        ConfigError,
        ("optional", "client_CA"),
        {"client_check": "optional", "client_CA": None},
        {"--client-check": "optional", "--client-ca": None},
    ),
    Bad(
        "required-without-client-ca",
        ConfigError,
        ("required", "client_CA"),
        {"client_CA": None},
        {"--client-ca": None},
    ),
    Bad(
        "unknown-client-check",
        ConfigError,
        ("requird",),
        {"client_check": "requird"},
        {"--client-check": "requird"},
    ),
    Bad(
        "handshake-timeout-negative",
        ConfigError,
        ("handshake_timeout", "-1"),
        {"handshake_timeout": -1.0},
        {"--handshake-timeout": "-1"},
    ),
    Bad("missing-cert", ConfigFileError, ("<missing>",), {"certificate": "<missing>"}),
    Bad("missing-key", ConfigFileError, ("<missing>",), {"private_key": "<missing>"}),
    Bad("missing-client-ca", ConfigFileError, ("<missing>",), {"client_CA": "<missing>"}),
    Bad("missing-chain", ConfigFileError, ("<missing>",), {"certificate_chain": "<missing>"}),
    Bad("cert-is-directory", ConfigFileError, ("<directory>",), {"certificate": "<directory>"}),
    Bad("key-is-directory", ConfigFileError, ("<directory>",), {"private_key": "<directory>"}),
    Bad("cert-unreadable", ConfigFileError, ("<unreadable>",), {"certificate": "<unreadable>"}),
    Bad("client-ca-unreadable", ConfigFileError, ("<unreadable>",), {"client_CA": "<unreadable>"}),
    Bad("client-ca-not-pem", ConfigFileError, ("<not_pem>",), {"client_CA": "<not_pem>"}),
    Bad("key-not-pem", ConfigFileError, ("<not_pem>",), {"private_key": "<not_pem>"}),
    # SPEC section 8: faults found in the files themselves.
    Bad(
        "client-ca-truncated-block",
        ConfigFileError,
        ("<ca_truncated>", "truncated", "line"),
        {"client_CA": "<ca_truncated>"},
    ),
    Bad(
        "client-ca-corrupt-base64",
        ConfigFileError,
        ("<ca_bad_base64>", "corrupt", "line"),
        {"client_CA": "<ca_bad_base64>"},
    ),
    Bad(
        "client-ca-corrupt-der",
        ConfigFileError,
        ("<ca_bad_der>", "corrupt certificate", "line"),
        {"client_CA": "<ca_bad_der>"},
    ),
    Bad(
        "client-ca-holds-a-key",
        ConfigFileError,
        ("<ca_with_key>", "PRIVATE KEY"),
        {"client_CA": "<ca_with_key>"},
    ),
    Bad(
        "client-ca-holds-no-ca",
        ConfigFileError,
        ("<leaf>", "no CA certificate"),
        {"client_CA": "<leaf>"},
    ),
    Bad("client-ca-is-fifo", ConfigFileError, ("<fifo>", "FIFO"), {"client_CA": "<fifo>"}),
    Bad(
        "cert-is-device",
        ConfigFileError,
        ("<device>", "character device"),
        {"certificate": "<device>"},
    ),
    Bad("key-is-fifo", ConfigFileError, ("<fifo>", "FIFO"), {"private_key": "<fifo>"}),
    Bad(
        "client-ca-too-large",
        ConfigFileError,
        ("<huge>", "larger than 10 MiB"),
        {"client_CA": "<huge>"},
    ),
    Bad(
        "client-ca-path-with-newline",
        ConfigFileError,
        ("control character", "<newline_shown>"),
        {"client_CA": "<newline>"},
    ),
    Bad(
        "chain-truncated-block",
        ConfigFileError,
        ("<ca_truncated>", "truncated"),
        {"certificate_chain": "<ca_truncated>"},
    ),
    Bad(
        "handshake-timeout-tiny",
        ConfigError,
        ("handshake_timeout", "1e-09"),
        {"handshake_timeout": 1e-9},
        {"--handshake-timeout": "1e-9"},
    ),
    Bad(
        "handshake-timeout-nan",
        ConfigError,
        ("handshake_timeout", "nan"),
        {"handshake_timeout": float("nan")},
        {"--handshake-timeout": "nan"},
    ),
    Bad(
        "handshake-timeout-infinite",
        ConfigError,
        ("handshake_timeout", "inf"),
        {"handshake_timeout": float("inf")},
        {"--handshake-timeout": "inf"},
    ),
    Bad(
        "handshake-timeout-absurd",
        ConfigError,
        ("handshake_timeout", "1000000000"),
        {"handshake_timeout": 1e9},
        {"--handshake-timeout": "1e9"},
    ),
    Bad(
        "key-does-not-match",
        ConfigError,
        ("does not match", "<other_key>", "<cert>"),
        {"private_key": "<other_key>"},
    ),
]
CASE_IDS = [c.id for c in CASES]


@pytest.fixture(scope="module")
def files(certs, tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("bad-config")
    unreadable = tmp / "unreadable.pem"
    unreadable.write_bytes(certs["ca"].cert.read_bytes())
    unreadable.chmod(0)
    not_pem = tmp / "not-pem.pem"
    not_pem.write_text("this is not a certificate\n")
    ca_pem = certs["ca"].cert.read_bytes()
    other_pem = certs["other-ca"].cert.read_bytes()
    lines = other_pem.splitlines(keepends=True)
    bad_files = {
        # A bundle whose second certificate was cut off (a failed download or copy).
        "ca_truncated": ca_pem + b"".join(lines[: len(lines) // 2]),
        # One character in the second block that base64 does not have.
        "ca_bad_base64": ca_pem + b"".join([lines[0], b"!" + lines[1][1:], *lines[2:]]),
        # Valid base64 of bytes that are no certificate.
        "ca_bad_der": ca_pem
        + b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(b"\x30\x03\x02\x01\x01 not DER")
        + b"-----END CERTIFICATE-----\n",
        "ca_with_key": ca_pem + certs["ca"].key.read_bytes(),
    }
    for name, data in bad_files.items():
        (tmp / f"{name}.pem").write_bytes(data)
    fifo = tmp / "fifo.pem"
    os.mkfifo(fifo)
    huge = tmp / "huge.pem"
    with huge.open("wb") as fh:  # sparse: no disk space used
        fh.truncate(11 * 1024 * 1024)
    newline = tmp / "ca\nsecond-line.pem"
    newline.write_bytes(ca_pem)
    return {
        **{name: str(tmp / f"{name}.pem") for name in bad_files},
        "leaf": str(certs["localhost"].cert),
        "fifo": str(fifo),
        "device": os.devnull,
        "huge": str(huge),
        "newline": str(newline),
        "newline_shown": repr(str(newline)),
        "cert": str(certs["server"].cert),
        "key": str(certs["server"].key),
        "ca": str(certs["ca"].cert),
        "other_key": str(certs["localhost"].key),
        "missing": str(tmp / "missing.pem"),
        "directory": str(tmp),
        "unreadable": str(unreadable),
        "not_pem": str(not_pem),
    }


def case(files, case_id: str) -> Bad:
    return next(c for c in CASES if c.id == case_id).resolve(files)


def good_settings(files) -> dict:
    return {
        "certificate": files["cert"],
        "private_key": files["key"],
        "client_CA": files["ca"],
        "client_check": "required",
        "client_check_host": False,
    }


CLI_NAMES = {
    "certificate": "--cert",
    "private_key": "--key",
    "certificate_chain": "--chain",
    "client_CA": "--client-ca",
}


def cli_options(files, bad: Bad) -> dict:
    options = {
        "--cert": files["cert"],
        "--key": files["key"],
        "--client-ca": files["ca"],
        "--client-check": "required",
        "--bind": "127.0.0.1:0",
    }
    for key, value in bad.settings.items():
        if key in CLI_NAMES:
            options[CLI_NAMES[key]] = value
    options.update(bad.argv)
    return options


def argv_of(adapter: str, options: dict) -> list[str]:
    argv = ["--adapter", adapter]
    for option, value in options.items():
        if value is True:
            argv.append(option)
        elif value is not None:
            argv += [option, value]
    return argv


def unreadable_skip(files, bad: Bad) -> None:
    if files["unreadable"] in bad.fragments and os.access(files["unreadable"], os.R_OK):
        pytest.skip("running as a user who can read a mode-000 file (root)")


def assert_one_line(message: str, fragments) -> None:
    assert message.strip() and "\n" not in message.strip(), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def assert_cli_refused(result: subprocess.CompletedProcess, fragments) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("harness.reference: error: ")
    assert_one_line(lines[0], fragments)


# -- from Python --------------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_python_refuses(files, adapter, case_id):
    bad = case(files, case_id)
    unreadable_skip(files, bad)
    settings = {**good_settings(files), **bad.settings}
    with pytest.raises(bad.error) as info:
        make_adapter(adapter, **settings)
    assert_one_line(str(info.value), bad.fragments)
    if bad.error is ConfigFileError:
        assert isinstance(info.value, FileNotFoundError)
        assert info.value.filename in bad.settings.values()


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
def test_python_refuses_what_openssl_refuses(files, adapter):
    """A cipher string OpenSSL knows nothing of: a ConfigError in one line, no traceback."""
    config = {
        "server.ssl_module": adapter,
        "server.ssl_certificate": files["cert"],
        "server.ssl_private_key": files["key"],
        "server.ssl_ciphers": "NO-SUCH-CIPHER",
    }
    with pytest.raises(ConfigError) as info:
        adapter_from_config(config)
    assert_one_line(str(info.value), ("TLS library refused",))


def test_python_refuses_unknown_adapter(files):
    with pytest.raises(ConfigError) as info:
        make_adapter("gnutls", **good_settings(files))
    assert_one_line(str(info.value), ("gnutls", "builtin", "pyopenssl"))


@pytest.mark.parametrize("text", ["localhost", "1.2.3.4:99999", "[::1:80", "::1:80", ":80", ""])
def test_python_refuses_malformed_bind(text):
    with pytest.raises(ConfigError) as info:
        parse_bind(text)
    assert_one_line(str(info.value), (repr(text),))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:8443", ("::1", 8443)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parse_bind_accepts(text, parsed):
    assert parse_bind(text) == parsed


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("adapter", ["builtin", "pyopenssl"])
def test_python_port_in_use(files, busy_port, adapter):
    server = ReferenceServer(
        make_adapter(adapter, **good_settings(files)), ("127.0.0.1", busy_port)
    )
    fds = open_fds()
    with pytest.raises(StartError) as info:
        server.start()
    assert_one_line(str(info.value), (f"127.0.0.1:{busy_port}",))
    server.stop()  # harmless after a failed start
    assert open_fds() == fds  # the socket that failed to bind was closed


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("request_timeout", 0.0, "request_timeout"),
        ("request_timeout", float("nan"), "request_timeout"),
        ("request_timeout", 1e-6, "request_timeout"),
        ("timeout", float("inf"), "timeout"),
        ("max_request_body", 0, "max_request_body"),
        ("max_request_body", 1.5, "max_request_body"),
        ("max_request_body", 2**40, "max_request_body"),
        ("max_waiting", 0, "max_waiting"),
    ],
)
def test_python_refuses_server_limits_that_cannot_work(files, option, value, fragment):
    adapter = make_adapter("builtin", **good_settings(files))
    with pytest.raises(ConfigError) as info:
        ReferenceServer(adapter, ("127.0.0.1", 0), **{option: value})
    assert_one_line(str(info.value), (fragment,))


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


def test_cherrypy_config_errors(files):
    base = {"server.ssl_certificate": files["cert"], "server.ssl_private_key": files["key"]}
    for config, fragment in [
        ({**base, "server.ssl_client_check_hots": True}, "server.ssl_client_check_hots"),
        ({**base, "server.ssl_client_check_host": "maybe"}, "maybe"),
        ({**base, "server.ssl_handshake_timeout": "soon"}, "soon"),
        ({**base, "server.ssl_module": "gnutls"}, "gnutls"),
        ({"server.ssl_certificate": files["cert"]}, "server.ssl_private_key"),
        ({**base, "server.ssl_client_check": "required"}, "client_CA"),
    ]:
        with pytest.raises(ConfigError) as info:
            adapter_from_config(config)
        assert_one_line(str(info.value), (fragment,))
    with pytest.raises(ConfigFileError):
        adapter_from_config(
            {
                **base,
                "server.ssl_client_CA": files["missing"],
                "server.ssl_client_check": "optional",
            }
        )


# -- from the command line ----------------------------------------------------------------
#
# The adapter plays no part in validation (both share policy.validate, checked from
# Python above for each), so each case runs once, adapters alternating; a few run
# at a time to keep the interpreter start-ups off the critical path.


def cli_cases(files, busy_port: int) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """case id -> (argv, fragments the one-line message must contain)."""
    good = cli_options(files, Bad("good", ConfigError, ()))
    out = {}
    for i, case_id in enumerate(CASE_IDS):
        bad = case(files, case_id)
        if files["unreadable"] in bad.fragments and os.access(files["unreadable"], os.R_OK):
            continue  # root reads mode-000 files; test_python_refuses reports the skip
        adapter = ("builtin", "pyopenssl")[i % 2]
        out[case_id] = (argv_of(adapter, cli_options(files, bad)), bad.fragments)
    out["unknown-adapter"] = (argv_of("gnutls", good), ("gnutls",))
    for text in ("localhost", "1.2.3.4:99999", "[::1:80"):
        out[f"bind:{text}"] = (argv_of("builtin", {**good, "--bind": text}), (text,))
    in_use = f"127.0.0.1:{busy_port}"
    out["port-in-use"] = (argv_of("pyopenssl", {**good, "--bind": in_use}), (in_use,))
    out["missing-options"] = (["--adapter", "builtin"], ("required",))
    soon = {**good, "--handshake-timeout": "soon"}
    out["timeout-not-a-number"] = (argv_of("builtin", soon), ("soon",))
    nan = {**good, "--request-timeout": "nan"}
    out["request-timeout-nan"] = (argv_of("pyopenssl", nan), ("request_timeout", "nan"))
    no_body = {**good, "--max-request-body": "0"}
    out["max-request-body-zero"] = (argv_of("builtin", no_body), ("max_request_body", "0"))
    return out


CLI_CASE_IDS = [
    *CASE_IDS,
    "unknown-adapter",
    "bind:localhost",
    "bind:1.2.3.4:99999",
    "bind:[::1:80",
    "port-in-use",
    "missing-options",
    "timeout-not-a-number",
    "request-timeout-nan",
    "max-request-body-zero",
]


@pytest.fixture(scope="module")
def cli_runs(files) -> dict[str, tuple[subprocess.CompletedProcess, tuple[str, ...]]]:
    def run(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "harness.reference", *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        todo = cli_cases(files, busy.getsockname()[1])
        with ThreadPoolExecutor(max_workers=CLI_PARALLEL) as pool:
            runs = pool.map(run, [argv for argv, _ in todo.values()])
            done = dict(zip(todo, runs, strict=True))
    return {case_id: (done[case_id], fragments) for case_id, (_, fragments) in todo.items()}


@pytest.mark.parametrize("case_id", CLI_CASE_IDS)
def test_cli_refuses(cli_runs, case_id):
    if case_id not in cli_runs:
        pytest.skip("running as a user who can read a mode-000 file (root)")
    result, fragments = cli_runs[case_id]
    assert_cli_refused(result, fragments)
