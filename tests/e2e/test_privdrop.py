"""process.user / process.group: the workers run as the configured user,
after the listeners were bound and the TLS key (readable by root only) was
read. The suite runs as root; these tests need it."""

import json
import os
import pathlib
import shutil
import ssl
import subprocess
import tempfile
import urllib.parse

import httpx
import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")

NOBODY, NOGROUP = 65534, 65534


@pytest.fixture
def root_only_certs(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    subprocess.run(["sh", str(ROOT / "tools" / "testcerts.sh"), str(d)], check=True,
                   capture_output=True)
    key = d / "server.key"
    os.chown(key, 0, 0)
    key.chmod(0o600)
    return d


def status_ids(pid: int) -> dict[str, list[int]]:
    """Uid, Gid and Groups lines of /proc/PID/status (real, effective, saved, fs)."""
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Uid", "Gid", "Groups", "PPid"):
            out[name] = [int(v) for v in value.split()]
    return out


def get_tls(port: int, certs: pathlib.Path, query: str) -> dict:
    r = httpx.get(f"https://localhost:{port}/?{query}", verify=str(certs / "ca.pem"), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_workers_run_as_nobody_with_a_root_only_tls_key(serve, root_only_certs):
    key = root_only_certs / "server.key"
    server = serve(
        "privdrop_app:app",
        listener={
            "tcp": "127.0.0.1:0",
            "tls": {"cert": str(root_only_certs / "server.pem"), "key": str(key)},
        },
        workers=2,
        process={"user": "nobody", "group": "nogroup"},
    )
    server.wait_serving()
    # The handshake needs the key the master read as root.
    seen = get_tls(server.port, root_only_certs, urllib.parse.quote(str(key)))
    assert seen["ids"] == [NOBODY, NOBODY, NOGROUP, NOGROUP]
    assert seen["groups"] == [NOGROUP]
    assert seen["key_readable"] is False  # the worker itself could not read it now
    assert seen["env"] == []  # nothing of saltare's leaks to the app
    ids = status_ids(seen["pid"])
    assert ids["PPid"] == [server.pid]  # a worker, not the master
    assert ids["Uid"] == [NOBODY] * 4
    assert ids["Gid"] == [NOGROUP] * 4
    assert ids["Groups"] == [NOGROUP]
    assert "running as user nobody (uid 65534, gid 65534)" in server.stderr()


def test_the_users_primary_group_is_the_default(serve, tmp_path):
    server = serve("privdrop_app:app", workers=2, process={"user": "65534"})
    server.wait_serving()
    seen = httpx.get(f"{server.url}/?/nonexistent", timeout=10).json()
    assert seen["ids"] == [NOBODY, NOBODY, NOGROUP, NOGROUP]
    assert status_ids(seen["pid"])["Uid"] == [NOBODY] * 4


@pytest.mark.parametrize(
    "process, message",
    [
        ({"user": "no-such-user-saltare"}, 'process.user: no user "no-such-user-saltare"'),
        ({"user": "nobody", "group": "no-such-group-saltare"},
         'process.group: no group "no-such-group-saltare"'),
    ],
)
def test_an_unknown_user_or_group_is_a_config_error(serve, process, message):
    server = serve("privdrop_app:app", process=process, ready=False)
    assert server.wait() == 78
    assert message in server.stderr()


def test_a_group_without_a_user_is_refused(serve):
    server = serve("privdrop_app:app", process={"group": "nogroup"}, ready=False)
    assert server.wait() == 78
    assert "process.group: needs process.user too" in server.stderr()


@pytest.fixture
def public_dir():
    """A directory nobody can read (pytest's tmp_path lies under a 0700 one)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="saltare-privdrop-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def test_without_root_a_switch_fails_clearly(public_dir):
    """saltare started as nobody cannot become another user: exit 1, said why."""
    d = public_dir
    config = d / "saltare.yaml"
    config.write_text(json.dumps({
        "app": {"target": "privdrop_app:app", "path": [str(ROOT / "tests" / "e2e" / "apps")]},
        "listeners": [{"tcp": "127.0.0.1:0"}],
        "process": {"user": "root"},
    }))
    config.chmod(0o644)
    binary = d / "saltare"  # bazel-bin lies under /root, closed to nobody
    shutil.copy(os.environ.get("SALTARE_BIN", str(ROOT / "bazel-bin" / "saltare")), binary)
    binary.chmod(0o755)
    proc = subprocess.run(
        [str(binary), "-c", str(config)], cwd=d, capture_output=True, text=True, timeout=30,
        user=NOBODY, group=NOGROUP, extra_groups=[],
    )
    assert proc.returncode == 1, proc.stderr
    assert ("process.user root: running as uid 65534, switching to uid 0 gid 0 needs root "
            "(or CAP_SETUID and CAP_SETGID)") in proc.stderr


def test_check_mode_names_an_unknown_user_and_group(tmp_path):
    config = tmp_path / "saltare.yaml"
    config.write_text("app: {target: m:app}\n"
                      "process: {user: no-such-user-saltare, group: no-such-group-saltare}\n")
    binary = os.environ.get("SALTARE_BIN", str(ROOT / "bazel-bin" / "saltare"))
    proc = subprocess.run([binary, "-t", "-c", str(config)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 78
    assert proc.stderr.splitlines() == [
        f"{config}:2:17: process.user: expected a user that exists on this system, "
        'got "no-such-user-saltare"',
        f"{config}:2:46: process.group: expected a group that exists on this system, "
        'got "no-such-group-saltare"',
    ]
