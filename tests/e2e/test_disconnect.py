"""Clients that leave while the app works: the app hears http.disconnect at
once, and the socket and its connection slot are freed at once, whatever the
app does next."""

import os
import socket
import time

import httpx

APP = "lifecycle_app:app"


def state(server):
    return httpx.get(server.url + "/state", timeout=10).json()


def wait_until(what, pred, timeout=10.0):
    """Polls pred() until it holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def open_fds(server) -> int:
    return len(os.listdir(f"/proc/{server.pid}/fd"))


def until_closed(s) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_a_body_cut_short_is_a_disconnect_at_once(serve):
    server = serve(APP, timeouts={"body": "60s"})
    with server.connect() as s:  # its recv gives up after 10 s, far below 60 s
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)
        s.shutdown(socket.SHUT_WR)
        assert until_closed(s) == b""
    wait_until("the app got http.disconnect", lambda: state(server)["received"] == ["http.disconnect"])


def test_abandoned_requests_free_their_fds_and_slots_at_once(serve):
    n = 300
    server = serve(APP, limits={"max_connections": n + 10}, timeouts={"shutdown": "1s"})
    assert httpx.get(server.url + "/").status_code == 200  # the app is imported
    baseline = open_fds(server)
    clients = []
    for _ in range(n):
        s = server.connect()
        s.sendall(b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
        clients.append(s)
    wait_until("every request reached the app", lambda: state(server)["started"].get("/never") == n)
    assert open_fds(server) >= baseline + n - 2
    for s in clients:
        s.close()
    # The app's tasks work on (nothing cancels them), yet hold no socket.
    wait_until("the fds were freed", lambda: open_fds(server) <= baseline + 2)
    assert state(server)["cancelled"].get("/never", 0) == 0
    # ... and no slot: a full set of new connections is served.
    more = [server.connect() for _ in range(n)]
    for s in more:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for s in more:
        assert until_closed(s).endswith(b"\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        s.close()
