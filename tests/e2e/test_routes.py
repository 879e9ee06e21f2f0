"""Intercept routes (issue 11): requests the server answers or shapes in C
before the app, declared in `routes` (docs/config.md, routes[])."""

import json
import pathlib
import signal
import socket
import subprocess
import time

import httpx
import pytest

from conftest import BIN, read_response, wait_for, wait_for_output

ROUTES = [
    {"name": "health", "path": "/healthz", "health": {}},
    {"path": "/favicon.ico", "return": {"status": 204}},
    {
        "path": "/maintenance",
        "methods": ["GET", "HEAD"],
        "return": {
            "status": 503,
            "body": "back soon\n",
            "headers": ["Retry-After: 120", "X-Why:  upgrade "],
        },
    },
    {"path": "/old/*", "redirect": {"to": "/new/{rest}{?query}", "status": 301}},
    {"path": "/q", "redirect": {"to": "https://example.org/search?{query}"}},
    {
        "path": "/api/*",
        "preflight": {
            "origins": ["https://app.example"],
            "methods": ["GET", "PUT"],
            "headers": ["X-Token", "Content-Type"],
            "max_age": "10m",
            "credentials": True,
        },
    },
    {"path": "/admin/*", "source": ["10.0.0.0/8", "unix"], "app": {}},
    {"path": "/local/*", "source": ["127.0.0.0/8", "::1"], "app": {}},
    {"path": "/upload/*", "methods": ["POST"], "app": {}, "limits": {"max_body": "1MiB"}},
    {"path": "/stream/*", "app": {}, "timeouts": {"write": "1s"}},
    {"host": "*.example.com", "return": {"body": "wildcard\n"}},
]


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("route_app:app", routes=ROUTES, limits={"max_body": "1KiB"})


def raw(server, data: bytes, *, head_request=False):
    with server.connect() as s:
        s.sendall(data)
        return read_response(s.makefile("rb"), head_request=head_request)


def get(server, target: str, host: str = "localhost", method: str = "GET", headers=()):
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    req = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    return raw(server, req.encode(), head_request=method == "HEAD")


def test_health_is_ok_while_serving(server):
    status, headers, body, _ = get(server, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    status, headers, body, _ = get(server, "/healthz", method="HEAD")
    assert (status, headers["content-length"], body) == (200, "3", b"")


def test_return_fixed_response_with_headers(server):
    status, headers, body, _ = get(server, "/maintenance")
    assert (status, body) == (503, b"back soon\n")
    assert headers["retry-after"] == "120"
    assert headers["x-why"] == "upgrade"
    assert headers["content-length"] == "10"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    # methods: POST does not match the route and goes to the app
    status, _, body, _ = get(server, "/maintenance", method="POST")
    assert status == 200 and json.loads(body)["app"]


def test_return_204_has_no_length_nor_body(server):
    with server.connect() as s:
        s.sendall(b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\nGET /favicon.ico HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    heads = data.split(b"\r\n\r\n")
    assert heads[0].startswith(b"HTTP/1.1 204 ") and heads[1].startswith(b"HTTP/1.1 204 ")
    assert b"content-length" not in data.lower()
    assert heads[2] == b""  # kept alive, nothing after the second head


def test_redirect_keeps_rest_and_query(server):
    status, headers, body, _ = get(server, "/old/a%20b/c.txt?x=1&y=%2F")
    assert status == 301
    assert headers["location"] == "/new/a%20b/c.txt?x=1&y=%2F"
    assert headers["content-length"] == "0" and body == b""
    status, headers, _, _ = get(server, "/old/")
    assert (status, headers["location"]) == (301, "/new/")
    # dot segments are resolved before {rest} is taken
    status, headers, _, _ = get(server, "/old/x/../y/./z")
    assert headers["location"] == "/new/y/z"
    # /old itself is not under the prefix /old/*
    status, _, body, _ = get(server, "/old")
    assert status == 200 and json.loads(body)["path"] == "/old"


def test_redirect_query_placeholder(server):
    status, headers, _, _ = get(server, "/q?term=a+b")
    assert (status, headers["location"]) == (302, "https://example.org/search?term=a+b")
    status, headers, _, _ = get(server, "/q")
    assert headers["location"] == "https://example.org/search?"


PREFLIGHT = [
    ("Origin", "https://app.example"),
    ("Access-Control-Request-Method", "PUT"),
    ("Access-Control-Request-Headers", "x-token, content-type"),
]


def test_preflight_allowed_echoes_origin(server):
    status, headers, body, _ = get(server, "/api/items", method="OPTIONS", headers=PREFLIGHT)
    assert status == 204 and body == b""
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET, PUT"
    assert headers["access-control-allow-headers"] == "x-token, content-type"
    assert headers["access-control-max-age"] == "600"
    assert headers["access-control-allow-credentials"] == "true"
    assert "Origin" in headers["vary"]


@pytest.mark.parametrize(
    "change",
    [
        ("Origin", "https://evil.example"),
        ("Access-Control-Request-Method", "DELETE"),
        ("Access-Control-Request-Headers", "x-token, x-other"),
    ],
)
def test_preflight_refused(server, change):
    hdrs = [change if k == change[0] else (k, v) for k, v in PREFLIGHT]
    status, headers, body, _ = get(server, "/api/items", method="OPTIONS", headers=hdrs)
    assert status == 403 and body == b""
    assert "access-control-allow-origin" not in headers


def test_non_preflight_falls_through_to_app(server):
    # OPTIONS without Access-Control-Request-Method is no preflight
    status, _, body, _ = get(
        server, "/api/items", method="OPTIONS", headers=[("Origin", "https://app.example")]
    )
    assert status == 200 and json.loads(body)["method"] == "OPTIONS"
    status, _, body, _ = get(server, "/api/items")
    assert status == 200 and json.loads(body)["path"] == "/api/items"


def test_source_refused_gets_403(server):
    status, _, body, _ = get(server, "/admin/users")
    assert (status, body) == (403, b"Forbidden\n")
    status, _, body, _ = get(server, "/local/users")
    assert status == 200 and json.loads(body)["path"] == "/local/users"


@pytest.mark.parametrize(
    "target",
    [
        "/public/../admin/x",
        "/public/%2e%2e/admin/x",
        "/public/%2E%2E%2fadmin/x",
        "/public/..%2Fadmin/x",
        "//admin/x",
        "/./admin/x",
        "/%61dmin/x",
        "/../../admin/x",
        "/local/../admin/x",
    ],
)
def test_traversal_cannot_dodge_a_source_restriction(server, target):
    status, _, body, _ = get(server, target)
    assert (status, body) == (403, b"Forbidden\n"), target


def test_dotdot_leaving_a_prefix_leaves_its_route(server):
    # /local/* allows 127.0.0.1; "/local/../x" is "/x": not that route (the app)
    status, _, body, _ = get(server, "/local/../x")
    assert status == 200 and json.loads(body)["raw_path"] == "/local/../x"


def test_per_route_max_body(server):
    body = b"x" * (100 << 10)
    r = httpx.post(server.url + "/upload/file", content=body, timeout=10)
    assert r.status_code == 200 and r.json()["length"] == len(body)
    r = httpx.post(server.url + "/other", content=body, timeout=10)
    assert r.status_code == 413
    r = httpx.post(server.url + "/upload/file", content=b"x" * ((1 << 20) + 1), timeout=10)
    assert r.status_code == 413


def server_side_state(server_port: int, client_port: int) -> str | None:
    """The TCP state (hex, "01" = ESTABLISHED) of the server's end of one
    connection, from /proc/net/tcp; None once the socket is gone."""
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == server_port and int(f[2].split(":")[1], 16) == client_port:
            return f[3]
    return None


def test_per_route_write_timeout(server):
    # /stream/* has timeouts.write 1s; the listener's is the default 30s
    s = server.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /stream/x HTTP/1.1\r\nHost: x\r\n\r\n")
    port = s.getsockname()[1]
    start = time.monotonic()
    wait_for(lambda: server_side_state(server.port, port) != "01", 25, "server closed the slow reader")
    assert time.monotonic() - start < 15
    s.close()


def test_host_wildcard_ignores_port_and_case(server):
    for host in ("a.example.com", "A.B.Example.COM:8080"):
        status, _, body, _ = get(server, "/anything", host=host)
        assert (status, body) == (200, b"wildcard\n"), host
    status, _, body, _ = get(server, "/anything", host="example.com")
    assert status == 200 and json.loads(body)["app"]


def test_listener_routes_replace_global_ones(serve):
    server = serve(
        "route_app:app",
        routes=ROUTES,
        listener={"tcp": "127.0.0.1:0", "routes": [{"path": "/ping", "return": {"body": "pong"}}]},
    )
    assert get(server, "/ping")[2] == b"pong"
    status, _, body, _ = get(server, "/healthz")
    assert status == 200 and json.loads(body)["app"]


def server_side_rx_queue(server_port: int, client_port: int) -> int | None:
    """Bytes the server has not read yet on one connection (/proc/net/tcp)."""
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local, remote = f[1], f[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return int(f[4].split(":")[1], 16)
    return None


def test_health_is_503_while_draining(serve):
    server = serve(
        "route_app:app",
        routes=[{"path": "/healthz", "health": {}}],
        timeouts={"shutdown": "10s", "header": "60s"},
    )
    s = server.connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    client_port = s.getsockname()[1]
    wait_for(lambda: server_side_rx_queue(server.port, client_port) == 0, 10, "head read")
    mark = server.mark()
    server.proc.send_signal(signal.SIGTERM)
    wait_for_output(server, r"draining", mark)
    s.sendall(b"\r\n")
    status, headers, body, _ = read_response(s.makefile("rb"))
    assert (status, body) == (503, b"draining\n")
    assert headers["connection"] == "close"
    s.close()
    assert server.wait() == 0


def test_access_log_names_the_route(serve):
    server = serve(
        "route_app:app",
        routes=[
            {"name": "health", "path": "/healthz", "health": {}},
            {"name": "api", "path": "/api/*", "app": {}},
            {"path": "/anon", "return": {}},
        ],
        log={"access": "stderr"},
    )
    mark = server.mark()
    for target in ("/healthz", "/api/x", "/anon", "/other"):
        assert get(server, target)[0] == 200
    wait_for_output(server, r'"path":"/other"', mark)
    lines = [json.loads(l) for l in server.stderr_since(mark).splitlines() if l.startswith("{")]
    routes = {l["path"]: l.get("route") for l in lines}
    assert routes == {"/healthz": "health", "/api/x": "api", "/anon": None, "/other": None}


def test_bad_routes_exit_78(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        'app: {target: "route_app:app"}\nroutes:\n  - path: /a/../b\n    health: {}\n'
    )
    r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 78
    assert r.stderr.startswith("bad.yaml:3:11: routes.0.path: expected an exact path") or (
        f"{cfg}:3:11: routes.0.path: expected an exact path" in r.stderr
    ), r.stderr
