"""Listener items: Unix sockets (mode, owner, abstract, stale vs live),
inherited fds, several listeners in one process, backlog capping."""

import json
import os
import pathlib
import socket
import stat
import subprocess

import httpx
import pytest

from conftest import APPS, BIN, START_TIMEOUT, free_port


def uds_get(path_or_abstract, url="http://localhost/"):
    if path_or_abstract.startswith("@"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect("\0" + path_or_abstract[1:])
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)
    with httpx.Client(transport=httpx.HTTPTransport(uds=path_or_abstract)) as c:
        r = c.get(url, timeout=5)
        return r.status_code, r.json()


def test_unix_socket_mode_owner_group(serve, tmp_path):
    path = str(tmp_path / "api.sock")
    server = serve(
        "listen_app:app",
        listener={"unix": path, "mode": "0640", "owner": "0", "group": "daemon"},
    )
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_uid == 0
    import grp

    assert st.st_gid == grp.getgrnam("daemon").gr_gid
    assert uds_get(path)[0] == 200
    assert server.stop() == 0
    assert not os.path.exists(path)  # removed on clean exit


def test_abstract_unix_socket(tmp_path):
    name = f"@saltare-test-{os.getpid()}-{free_port()}"
    config = tmp_path / "a.yaml"
    config.write_text(
        json.dumps(
            {
                "app": {"target": "listen_app:app", "path": [str(APPS)]},
                "listeners": [{"unix": name}],
            }
        )
    )
    proc = subprocess.Popen([BIN, "-c", str(config)], stderr=subprocess.PIPE)
    try:
        import time

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                status, body = uds_get(name)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
        assert status == 200
        assert body["server"][0] == name
        # A second server on the same abstract name is refused.
        r = subprocess.run([BIN, "-c", str(config)], capture_output=True, text=True, timeout=15)
        assert r.returncode == 1
        assert "abstract name in use" in r.stderr
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


def test_stale_socket_replaced_live_one_refused(serve, tmp_path):
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: stale
    server = serve("listen_app:app", listener={"unix": path})
    assert "replaced a stale socket file" in server.stderr()
    assert uds_get(path)[0] == 200
    config = tmp_path / "second.yaml"
    config.write_text(
        json.dumps({"app": {"target": "listen_app:app", "path": [str(APPS)]},
                    "listeners": [{"unix": path}]})
    )
    r = subprocess.run([BIN, "-c", str(config)], capture_output=True, text=True, timeout=15)
    assert r.returncode == 1
    assert f"listen {path}: another process is listening on it" in r.stderr
    assert uds_get(path)[0] == 200  # the live server was left alone


def test_inherited_fd_and_plain_tcp_in_one_process(tmp_path):
    port, other = free_port(), free_port()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(16)
    config = tmp_path / "fd.yaml"
    config.write_text(
        json.dumps(
            {
                "app": {"target": "listen_app:app", "path": [str(APPS)]},
                "listeners": [
                    {"fd": lsock.fileno(), "name": "inherited"},
                    {"tcp": f"127.0.0.1:{other}", "backlog": 100000000 // 100},
                ],
            }
        )
    )
    proc = subprocess.Popen(
        [BIN, "-c", str(config)], pass_fds=[lsock.fileno()], stderr=subprocess.PIPE, text=True
    )
    lsock.close()
    try:
        import time

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
        assert r.json()["server"] == ["127.0.0.1", port]
        assert httpx.get(f"http://127.0.0.1:{other}/", timeout=5).status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "backlog 1000000 capped to net.core.somaxconn" in err


def test_fd_that_is_not_a_listening_socket(tmp_path):
    config = tmp_path / "fd.yaml"
    config.write_text(
        json.dumps(
            {"app": {"target": "listen_app:app", "path": [str(APPS)]}, "listeners": [{"fd": 0}]}
        )
    )
    r = subprocess.run(
        [BIN, "-c", str(config)], capture_output=True, text=True, timeout=15,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 1
    assert "listen fd:0: inherited fd" in r.stderr


def test_bad_listener_config_is_exit_78_with_position(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "app: {target: listen_app:app}\n"
        "listeners:\n"
        "  - unix: \"@abs\"\n"
        "    mode: \"0600\"\n"
    )
    r = subprocess.run([BIN, "-c", str(config), "-t"], capture_output=True, text=True)
    assert r.returncode == 78
    assert (
        f"{config}:4:11: listeners.0.mode: an abstract socket (\"@...\") has no file to "
        "apply it to" in r.stderr
    )


def test_raise_nofile_lifts_the_soft_limit(tmp_path):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    if low == hard:
        pytest.skip("the hard open-file limit is 256 or less: nothing to raise")
    port = free_port()
    config = tmp_path / "nofile.yaml"
    config.write_text(json.dumps({
        "app": {"target": "listen_app:app", "path": [str(APPS)]},
        "listeners": [{"tcp": f"127.0.0.1:{port}"}],
        "process": {"raise_nofile": True},
    }))

    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    proc = subprocess.Popen([BIN, "-c", str(config)], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lower)
    try:
        import time

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
        limits = pathlib.Path(f"/proc/{proc.pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        assert line.split()[3] == str(hard), line
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert f"open file limit raised from {low} to {hard}" in err
