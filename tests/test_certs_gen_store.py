"""Nothing a user owns is overwritten: certs_gen writes only into an empty directory or
over a set it made itself (recognised by its manifest), says whether it reused or
regenerated, and reports a damaged set instead of silently replacing it.

Each refusal is checked from the outside, through ``python -m certs_gen`` as a user
runs it: exit status 2, one line on stderr, and every file in the directory byte for
byte as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "certs_gen", *args], capture_output=True, text=True, timeout=60
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A standard set, made once; tests copy it instead of generating their own."""
    out = tmp_path_factory.mktemp("made")
    assert run_cli(str(out)).returncode == 0
    return snapshot(out)


def copy_set(made: dict[str, bytes], out: Path) -> Path:
    out.mkdir(exist_ok=True)
    for name, data in made.items():
        (out / name).write_bytes(data)
    return out


def test_generated_then_reused_says_which(tmp_path):
    first = run_cli(str(tmp_path / "set"))
    assert first.returncode == 0
    assert first.stdout.strip().splitlines()[-1] == "generated: the directory was empty"
    before = snapshot(tmp_path / "set")
    again = run_cli(str(tmp_path / "set"))
    assert again.returncode == 0
    last = again.stdout.strip().splitlines()[-1]
    assert last.startswith("reused: an intact standard set of 11 credentials"), last
    assert snapshot(tmp_path / "set") == before


@pytest.mark.parametrize(
    "name, content",
    [
        ("server.key", b"my production key\n"),
        ("ca.pem", b"my own CA\n"),
        ("notes.txt", b"anything at all\n"),
    ],
)
def test_a_directory_of_the_users_is_refused(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    before = snapshot(tmp_path)
    result = run_cli(str(tmp_path))
    assert_refused(result, "holds no certificate set this project made", "--force")
    assert snapshot(tmp_path) == before


def test_a_manifest_of_the_users_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "my app", "version": 3}))
    before = snapshot(tmp_path)
    result = run_cli(str(tmp_path))
    assert_refused(result, "not a certs_gen manifest")
    assert snapshot(tmp_path) == before
    (tmp_path / "manifest.json").write_text("{not json")
    assert_refused(run_cli(str(tmp_path)), "cannot be read")


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda d: (d / "wildcard.pem").write_text("garbage"), ("damaged", "wildcard.pem")),
        (lambda d: (d / "ip.key").unlink(), ("damaged", "ip.key is missing")),
        (
            lambda d: (d / "server.pem").write_bytes((d / "localhost.pem").read_bytes()),
            ("damaged", "server.pem is not the certificate its manifest names"),
        ),
        (
            lambda d: (d / "expired.key").write_bytes((d / "ip.key").read_bytes()),
            ("damaged", "expired.key does not match expired.pem"),
        ),
    ],
    ids=["corrupt", "partial", "edited", "wrong-key"],
)
def test_a_damaged_set_is_reported_not_regenerated(tmp_path, made, damage, words):
    out = copy_set(made, tmp_path / "set")
    damage(out)
    before = snapshot(out)
    assert_refused(run_cli(str(out)), *words)
    assert snapshot(out) == before
    forced = run_cli(str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip().splitlines()[-1].startswith("regenerated (--force): ")
    assert run_cli(str(out)).stdout.strip().splitlines()[-1].startswith("reused")


def test_force_replaces_only_the_sets_own_names(tmp_path):
    (tmp_path / "server.key").write_bytes(b"mine\n")
    (tmp_path / "notes.txt").write_bytes(b"keep me\n")
    result = run_cli(str(tmp_path), "--force")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "notes.txt").read_bytes() == b"keep me\n"
    assert (tmp_path / "server.key").read_bytes() != b"mine\n"


def test_regeneration_keeps_the_users_files(tmp_path, made):
    out = copy_set(made, tmp_path / "set")
    (out / "notes.txt").write_bytes(b"keep me\n")
    result = run_cli(str(out), "--profile", "extended")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last == (
        "regenerated: it held an intact standard set of 11 credentials, "
        "the extended set was asked for"
    )
    assert (out / "notes.txt").read_bytes() == b"keep me\n"
    back = run_cli(str(out))  # extended -> standard: the extended set's own files go
    assert back.returncode == 0
    assert not (out / "cn-only.pem").exists()
    assert (out / "notes.txt").read_bytes() == b"keep me\n"


def test_regeneration_refuses_to_replace_a_file_with_a_new_name(tmp_path, made):
    out = copy_set(made, tmp_path / "set")
    (out / "cn-only.pem").write_bytes(b"the user's, not in the standard manifest\n")
    before = snapshot(out)
    result = run_cli(str(out), "--profile", "extended")
    assert_refused(result, "cn-only.pem was not written by certs_gen")
    assert snapshot(out) == before
