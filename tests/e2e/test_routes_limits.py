"""Limits counted per client address (issue 11): limits.rate (429),
limits.concurrency (503), limits.max_connections_per_ip and
limits.max_connection_lifetime, globally and per route."""

import socket
import time

from conftest import read_response, wait_for


def request(target: str, *, close: bool = False, headers=()) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    conn = "Connection: close\r\n" if close else ""
    return f"GET {target} HTTP/1.1\r\nHost: x\r\n{extra}{conn}\r\n".encode()


def pipelined(server, targets, headers=()):
    """Sends every request in one write on one connection; the responses."""
    with server.connect() as s:
        s.sendall(b"".join(request(t, headers=headers) for t in targets))
        f = s.makefile("rb")
        return [read_response(f) for _ in targets]


def get(server, target, headers=()):
    with server.connect() as s:
        s.sendall(request(target, close=True, headers=headers))
        return read_response(s.makefile("rb"))


def test_rate_answers_429_with_retry_after_past_the_burst(serve):
    server = serve(
        "route_app:app",
        limits={"rate": {"per_sec": 1, "burst": 3}},
        routes=[
            {"path": "/healthz", "health": {}, "limits": {"rate": {"per_sec": 0}}},
            {"path": "/own/*", "app": {}, "limits": {"rate": {"per_sec": 1, "burst": 2}}},
        ],
    )
    got = pipelined(server, ["/a"] * 8)
    statuses = [r[0] for r in got]
    assert statuses[:3] == [200, 200, 200], statuses
    # One token a second comes back: even on a slow machine most are refused.
    assert statuses[3:].count(429) >= 3, statuses
    refused = next(r for r in got if r[0] == 429)
    assert refused[1]["retry-after"] == "1"
    assert refused[2] == b"Too Many Requests\n"
    # A route without a rate is not limited; a route with its own has its own bucket.
    assert [r[0] for r in pipelined(server, ["/healthz"] * 5)] == [200] * 5
    own = [r[0] for r in pipelined(server, ["/own/x"] * 5)]
    assert own[:2] == [200, 200] and own[2:].count(429) >= 2, own


def test_rate_counts_the_client_a_trusted_proxy_names(serve):
    server = serve(
        "route_app:app",
        limits={"rate": {"per_sec": 1, "burst": 2}},
        proxy={"trusted": ["127.0.0.1"], "headers": True},
    )
    a = [r[0] for r in pipelined(server, ["/"] * 4, headers=[("X-Forwarded-For", "192.0.2.1")])]
    assert a[:2] == [200, 200] and 429 in a[2:], a
    # Another client behind the same proxy has a full bucket.
    b = [r[0] for r in pipelined(server, ["/"] * 2, headers=[("X-Forwarded-For", "192.0.2.2")])]
    assert b == [200, 200]


def closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_max_connections_per_ip_closes_the_extra_connection(serve):
    server = serve("route_app:app", limits={"max_connections_per_ip": 2})
    held = []
    for _ in range(2):
        s = server.connect()
        s.sendall(request("/"))
        assert read_response(s.makefile("rb"))[0] == 200
        held.append(s)
    extra = server.connect()
    extra.sendall(request("/", close=True))
    assert closed_by_server(extra)  # accepted and closed, no answer
    extra.close()
    held.pop().close()

    # Once the server has seen the close, the slot is free again.
    def admitted():
        with server.connect() as s:
            s.sendall(request("/", close=True))
            try:
                return read_response(s.makefile("rb"))[0] == 200
            except (ConnectionError, ValueError, AssertionError):
                return False

    wait_for(admitted, 10, "a connection admitted after one closed")
    for s in held:
        s.close()


def test_max_connections_per_ip_behind_a_proxy_header_counts_its_source(serve):
    server = serve(
        "route_app:app",
        listener={"tcp": "127.0.0.1:0", "proxy": {"protocol": "v1"}},
        limits={"max_connections_per_ip": 1},
    )

    def open_as(src):
        s = server.connect()
        s.sendall(f"PROXY TCP4 {src} 192.0.2.2 1000 80\r\n".encode() + request("/"))
        return s

    a = open_as("192.0.2.10")
    assert read_response(a.makefile("rb"))[0] == 200
    b = open_as("192.0.2.10")
    assert closed_by_server(b)
    c = open_as("192.0.2.11")  # another client: its own count
    assert read_response(c.makefile("rb"))[0] == 200
    for s in (a, b, c):
        s.close()


def test_max_connection_lifetime_closes_a_kept_alive_connection(serve):
    server = serve(
        "route_app:app",
        limits={"max_connection_lifetime": "1s"},
        timeouts={"keep_alive": "60s"},
    )
    with server.connect() as s:
        start = time.monotonic()
        s.sendall(request("/"))
        f = s.makefile("rb")
        status, headers, _, _ = read_response(f)
        assert status == 200 and headers.get("connection") != "close"
        assert closed_by_server(s)  # long before keep_alive
        assert time.monotonic() - start < 30


def test_max_connection_lifetime_ends_a_busy_connection_with_connection_close(serve):
    """A request that starts past the lifetime is answered, with
    Connection: close; the one before it was not cut."""
    server = serve("limits_app:app", limits={"max_connection_lifetime": "2s"})
    with server.connect() as s:
        f = s.makefile("rb")
        s.sendall(request("/sleep") + request("/after"))  # /after starts 3 s in
        status, headers, body, _ = read_response(f)
        assert (status, body) == (200, b"/sleep") and headers.get("connection") != "close"
        status, headers, body, _ = read_response(f)
        assert (status, body, headers["connection"]) == (200, b"/after", "close")
        assert closed_by_server(s)


def test_concurrency_answers_503_with_retry_after(serve):
    server = serve(
        "limits_app:app",
        limits={"concurrency": 1},
        routes=[{"path": "/release", "app": {}, "limits": {"concurrency": 0}}],
    )
    holder = server.connect()
    holder.sendall(request("/hold", close=True))
    wait_for(lambda: get(server, "/other")[0] == 503, 10, "503 while /hold is in flight")
    status, headers, body, _ = get(server, "/other")
    assert (status, headers["retry-after"], body) == (503, "1", b"Service Unavailable\n")
    # Another route with its own cap is not held up by it.
    assert get(server, "/release")[0] == 200
    assert read_response(holder.makefile("rb"))[0] == 200
    holder.close()
    wait_for(lambda: get(server, "/other")[0] == 200, 10, "200 once /hold ended")
