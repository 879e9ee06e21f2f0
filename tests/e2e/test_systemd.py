"""systemd socket activation and sd_notify, the way systemd does them: fds
passed from 3 with LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID (sd_launch.py), and
notifications read from a datagram socket named by NOTIFY_SOCKET."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from conftest import APPS, BIN, START_TIMEOUT, free_port

LAUNCH = os.path.join(os.path.dirname(__file__), "sd_launch.py")


def write_config(tmp_path, listeners, workers=1):
    config = {
        "app": {"target": "listen_app:app", "path": [str(APPS)], "lifespan": "on"},
        "workers": workers,
        "listeners": listeners,
        "timeouts": {"shutdown": "5s"},
    }
    path = tmp_path / "saltare.yaml"
    path.write_text(json.dumps(config))
    return path


def launch(tmp_path, fds, listeners, *, notify=None, workers=1):
    cfg = write_config(tmp_path, listeners, workers)
    env = dict(os.environ)
    if notify:
        env["NOTIFY_SOCKET"] = notify
    log = open(tmp_path / "saltare.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, LAUNCH, *fds, "--", BIN, "-c", str(cfg)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    return proc


def get(url):
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def stop(proc, tmp_path):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0, (tmp_path / "saltare.log").read_text()


def test_two_named_fds_are_matched_by_name_not_position(tmp_path):
    web, admin = free_port(), free_port()
    # admin is passed first (fd 3), web second (fd 4); the config lists web first.
    proc = launch(
        tmp_path,
        [f"admin=tcp:127.0.0.1:{admin}", f"web=tcp:127.0.0.1:{web}"],
        [{"systemd": "web", "name": "web"}, {"systemd": "admin", "name": "admin"}],
    )
    try:
        r = get(f"http://127.0.0.1:{web}/")
        assert r.status_code == 200
        body = r.json()
        assert body["server"] == ["127.0.0.1", web]
        assert body["env"] == []  # LISTEN_* unset before the app runs
        assert get(f"http://127.0.0.1:{admin}/").json()["server"] == ["127.0.0.1", admin]
    finally:
        stop(proc, tmp_path)


def test_tcp_item_takes_the_passed_socket_with_its_address(tmp_path):
    port = free_port()
    sock = tmp_path / "s.sock"
    proc = launch(
        tmp_path,
        [f"whatever=tcp:127.0.0.1:{port}", f"other=unix:{sock}"],
        [{"tcp": f"127.0.0.1:{port}"}, {"systemd": "true"}],
    )
    try:
        assert get(f"http://127.0.0.1:{port}/").status_code == 200
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport) as c:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    r = c.get("http://localhost/", timeout=5)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            assert r.status_code == 200
    finally:
        stop(proc, tmp_path)
    assert sock.exists()  # systemd's socket file: not ours to remove


def test_missing_named_fd_is_a_clear_startup_error(tmp_path):
    port = free_port()
    proc = launch(
        tmp_path,
        [f"web=tcp:127.0.0.1:{port}"],
        [{"systemd": "web"}, {"systemd": "metrics"}],
    )
    assert proc.wait(15) == 1
    log = (tmp_path / "saltare.log").read_text()
    assert (
        "listeners.1 (systemd: metrics): no such socket among those passed (names: web (taken))"
        in log
    ), log


def test_systemd_listener_without_activation_fails(tmp_path):
    cfg = write_config(tmp_path, [{"systemd": "web"}])
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    r = subprocess.run([BIN, "-c", str(cfg)], capture_output=True, text=True, env=env, timeout=15)
    assert r.returncode == 1
    assert "LISTEN_FDS unset or 0" in r.stderr


def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(START_TIMEOUT)
    return s, path


def read_until(s, key):
    seen = []
    while True:
        msg = s.recv(4096).decode()
        seen.append(msg)
        if key in msg.split("\n"):
            return seen


@pytest.mark.parametrize("workers", [1, 2])
def test_notify_ready_after_startup_and_stopping_on_drain(tmp_path, workers):
    port = free_port()
    s, path = notify_socket(tmp_path)
    proc = launch(
        tmp_path,
        [f"web=tcp:127.0.0.1:{port}"],
        [{"systemd": "web"}],
        notify=path,
        workers=workers,
    )
    try:
        msgs = read_until(s, "READY=1")
        assert msgs[0].startswith("STATUS=starting")
        ready = msgs[-1].split("\n")
        assert f"STATUS=serving, {workers} worker{'s' if workers > 1 else ''} ready" in ready
        # READY means served: the app's lifespan startup has finished.
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert r.status_code == 200
        assert "NOTIFY_SOCKET" not in r.json()["env"]
        proc.send_signal(signal.SIGTERM)
        read_until(s, "STOPPING=1")
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        s.close()


def test_sighup_reload_says_reloading_then_ready_and_keeps_the_systemd_socket(tmp_path):
    port = free_port()
    s, path = notify_socket(tmp_path)
    proc = launch(tmp_path, [f"web=tcp:127.0.0.1:{port}"], [{"systemd": "web"}],
                  notify=path, workers=2)
    try:
        read_until(s, "READY=1")
        before = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()["pid"]
        proc.send_signal(signal.SIGHUP)  # the launcher exec'd: this is saltare's master
        msgs = read_until(s, "RELOADING=1")
        assert any(line.startswith("MONOTONIC_USEC=") for line in msgs[-1].split("\n"))
        read_until(s, "READY=1")  # the new generation serves
        log = tmp_path / "saltare.log"
        deadline = time.monotonic() + START_TIMEOUT
        while log.read_text().count("drained and exited") < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)  # the same socket, new workers
        assert r.status_code == 200 and r.json()["pid"] != before
        assert "reload: generation 2 ready" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        read_until(s, "STOPPING=1")
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
