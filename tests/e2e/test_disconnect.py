"""Clients that leave while the app works: the app hears http.disconnect at
once, and the socket and its connection slot are freed at once, whatever the
app does next. timeouts.app bounds how long the app itself may take."""

import os
import socket
import time

import httpx
from conftest import free_port

APP = "lifecycle_app:app"


def state(server):
    return httpx.get(server.url + "/state", timeout=10).json()


def wait_until(what, pred, timeout=30.0):
    """Polls pred() until it holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def open_fds(server) -> int:
    return len(os.listdir(f"/proc/{server.worker_pid}/fd"))


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


def test_app_timeout_answers_504_and_cancels_the_task(serve):
    server = serve(APP, timeouts={"app": "500ms"})
    r = httpx.get(server.url + "/never", timeout=10)
    assert r.status_code == 504
    assert r.headers["connection"] == "close"
    wait_until("the task was cancelled", lambda: state(server)["cancelled"].get("/never") == 1)
    server.wait_log("GET /never: timeouts.app expired")


def test_app_timeout_can_be_set_per_listener(serve):
    fast, slow = free_port(), free_port()
    server = serve(
        APP,
        listener={"tcp": f"127.0.0.1:{fast}", "timeouts": {"app": "300ms"}},
        listeners=[
            {"tcp": f"127.0.0.1:{fast}", "timeouts": {"app": "300ms"}},
            {"tcp": f"127.0.0.1:{slow}", "timeouts": {"app": "20s"}},
        ],
        timeouts={"shutdown": "1s"},  # the slow listener's task still runs at the end
    )
    assert httpx.get(f"http://127.0.0.1:{fast}/never", timeout=10).status_code == 504
    with socket.create_connection(("127.0.0.1", slow)) as s:
        s.settimeout(2)
        s.sendall(b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(100)
        except socket.timeout:
            data = None  # still working: the slow listener's limit is far away
    assert data is None
    assert state(server)["cancelled"].get("/never") == 1


def test_app_timeout_after_part_of_the_response_delivers_it_and_closes(serve):
    server = serve(APP, timeouts={"app": "500ms"})
    with server.connect() as s:
        s.sendall(b"GET /partial-never HTTP/1.1\r\nHost: x\r\n\r\n")
        data = until_closed(s)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\n4\r\npart\r\n")  # no last chunk: the client sees it cut
    wait_until("the task was cancelled", lambda: state(server)["cancelled"].get("/partial-never") == 1)
