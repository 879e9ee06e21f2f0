"""Intercept routes (issue 11): requests the server answers or shapes in C
before the app, declared in `routes` (docs/config.md, routes[])."""

import gzip
import json
import pathlib
import signal
import socket
import ssl
import subprocess
import time

import httpx
import pytest

from conftest import BIN, ROOT, read_response, wait_for, wait_for_output

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


def test_check_warns_about_unreachable_routes_and_refuses_a_missing_root(tmp_path):
    cfg = tmp_path / "shadow.yaml"
    cfg.write_text(
        'app: {target: "route_app:app"}\nroutes:\n'
        f"  - {{path: /static/*, files: {{root: {tmp_path}}}}}\n"
        "  - {path: /static/app.css, return: {}}\n"
    )
    r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (
        f"warning: {cfg}:4:5: routes.1: unreachable: every request it matches is taken first "
        f"by routes.0 at {cfg}:3:5"
    ) in r.stderr
    cfg.write_text(
        'app: {target: "route_app:app"}\nroutes:\n'
        f"  - {{path: /static/*, files: {{root: {tmp_path / 'nope'}}}}}\n"
    )
    r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 78
    assert f"{cfg}:3:37: routes.0.files.root: expected an existing directory" in r.stderr, r.stderr


# ---- files ------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "style.css").write_text("body{}\n")
    (root / "app.js").write_text("console.log(1)\n" * 100)
    (root / "app.js.gz").write_bytes(gzip.compress(b"zipped\n", mtime=0))
    (root / "big.bin").write_bytes(bytes(range(256)) * (40 << 10))  # 10 MiB
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("docs\n")
    (root / "empty").mkdir()
    (root / "empty.txt").write_text("")
    outside = root.parent / (root.name + "-secret.txt")
    outside.write_text("secret\n")
    (root / "leak.txt").symlink_to(f"../{outside.name}")  # relative, leaves the root
    (root / "abs-leak.txt").symlink_to(outside)
    (root / "alias.css").symlink_to("style.css")  # relative, stays inside
    (root / "docs" / "up.css").symlink_to("../style.css")
    return root


@pytest.fixture(scope="module")
def files_server(serve_module, site):
    return serve_module(
        "route_app:app",
        routes=[
            {"path": "/s/*", "files": {"root": str(site), "cache": "1h", "precompressed": True}},
            {"path": "/f/*", "files": {"root": str(site), "fallback": "app"}},
        ],
    )


def test_files_serves_a_file_with_validators(files_server, site):
    r = httpx.get(files_server.url + "/s/style.css")
    assert r.status_code == 200 and r.content == b"body{}\n"
    assert r.headers["content-type"] == "text/css"
    assert r.headers["content-length"] == "7"
    assert r.headers["cache-control"] == "max-age=3600"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"].startswith('"') and r.headers["last-modified"].endswith(" GMT")
    h = httpx.head(files_server.url + "/s/style.css")
    assert (h.status_code, h.content, h.headers["content-length"]) == (200, b"", "7")
    assert h.headers["etag"] == r.headers["etag"]


def test_files_conditionals_give_304(files_server):
    r = httpx.get(files_server.url + "/s/style.css")
    etag, lm = r.headers["etag"], r.headers["last-modified"]
    for hdrs in ({"if-none-match": etag}, {"if-none-match": f'"x", W/{etag}'},
                 {"if-modified-since": lm}, {"if-none-match": "*"}):
        c = httpx.get(files_server.url + "/s/style.css", headers=hdrs)
        assert c.status_code == 304 and c.content == b"", hdrs
        assert c.headers["etag"] == etag and "content-length" not in c.headers
    # If-None-Match that does not match wins over a matching If-Modified-Since
    c = httpx.get(files_server.url + "/s/style.css",
                  headers={"if-none-match": '"other"', "if-modified-since": lm})
    assert c.status_code == 200


def test_files_single_range(files_server, site):
    data = (site / "big.bin").read_bytes()
    url = files_server.url + "/s/big.bin"
    for spec, first, last in (("0-9", 0, 9), ("100-", 100, len(data) - 1),
                              ("-5", len(data) - 5, len(data) - 1),
                              (f"10-{len(data) + 50}", 10, len(data) - 1)):
        r = httpx.get(url, headers={"range": f"bytes={spec}"})
        assert r.status_code == 206, spec
        assert r.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
        assert r.content == data[first:last + 1], spec
    r = httpx.get(url, headers={"range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    # several ranges, or a stale If-Range: the whole file
    r = httpx.get(url, headers={"range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and len(r.content) == len(data)
    r = httpx.get(url, headers={"range": "bytes=0-1", "if-range": '"stale"'})
    assert r.status_code == 200 and len(r.content) == len(data)


def test_files_big_body_intact_and_connection_reused(files_server, site):
    data = (site / "big.bin").read_bytes()
    with httpx.Client() as c:
        for _ in range(3):
            r = c.get(files_server.url + "/s/big.bin")
            assert r.status_code == 200 and r.content == data
        assert c.get(files_server.url + "/s/style.css").content == b"body{}\n"


def test_files_index_no_listing_and_405(files_server):
    assert httpx.get(files_server.url + "/s/").text == "<h1>home</h1>\n"
    assert httpx.get(files_server.url + "/s/docs/").text == "docs\n"
    assert httpx.get(files_server.url + "/s/empty/").status_code == 404
    assert httpx.get(files_server.url + "/s/empty.txt").content == b""
    r = httpx.post(files_server.url + "/s/style.css", content=b"x")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


def test_files_never_leave_the_root(files_server):
    assert httpx.get(files_server.url + "/s/leak.txt").status_code == 404
    assert httpx.get(files_server.url + "/s/abs-leak.txt").status_code == 404
    assert httpx.get(files_server.url + "/s/alias.css").content == b"body{}\n"
    assert httpx.get(files_server.url + "/s/docs/up.css").content == b"body{}\n"
    for target in ("/s/../s/leak.txt", "/s/%2e%2e/etc/passwd", "/s/..%2f..%2fetc/passwd",
                   "/s/a%00.css"):
        status, _, body, _ = get(files_server, target)
        assert status in (404, 200) and b"secret" not in body and b"root:" not in body, target


def test_files_precompressed_variant(files_server):
    r = httpx.get(files_server.url + "/s/app.js", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["vary"] == "Accept-Encoding"
    assert r.headers["content-type"] == "text/javascript"
    assert r.text == "zipped\n"  # the .gz sibling, decoded by the client
    r = httpx.get(files_server.url + "/s/app.js", headers={"accept-encoding": "gzip;q=0, br"})
    assert "content-encoding" not in r.headers
    assert r.text == "console.log(1)\n" * 100


def test_files_missing_falls_back_to_the_app(files_server):
    r = httpx.get(files_server.url + "/f/nope.txt")
    assert r.status_code == 200 and r.json()["path"] == "/f/nope.txt"
    assert httpx.get(files_server.url + "/s/nope.txt").status_code == 404


def test_files_over_tls_read_and_write(serve, site, tmp_path):
    """A TLS connection without kTLS has no sendfile: the body is read and written."""
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(["sh", str(ROOT / "tools" / "testcerts.sh"), str(certs)], check=True,
                   capture_output=True)
    server = serve(
        "route_app:app",
        routes=[{"path": "/s/*", "files": {"root": str(site)}}],
        listener={"tcp": "127.0.0.1:0", "tls": {"cert": str(certs / "server.pem"),
                                                 "key": str(certs / "server.key")}},
    )
    data = (site / "big.bin").read_bytes()
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    url = f"https://localhost:{server.port}/s/big.bin"
    with httpx.Client(verify=ctx) as c:
        r = c.get(url)
        assert r.status_code == 200 and r.content == data
        r = c.get(url, headers={"range": "bytes=1000-1999"})
        assert r.status_code == 206 and r.content == data[1000:2000]


# ---- source judges the proxied client -------------------------------------------


def test_source_judges_the_client_a_trusted_proxy_names(serve):
    """Behind a trusted proxy, `source` is about the client the proxy names
    (X-Forwarded-For), not the proxy's own address."""
    server = serve(
        "route_app:app",
        routes=[{"path": "/admin/*", "source": ["10.0.0.0/8"], "app": {}}],
        proxy={"trusted": ["127.0.0.1"], "headers": True},
    )
    status, _, body, _ = get(server, "/admin/x", headers=[("X-Forwarded-For", "10.1.2.3")])
    assert status == 200 and json.loads(body)["path"] == "/admin/x"
    status, _, body, _ = get(server, "/admin/x", headers=[("X-Forwarded-For", "192.0.2.1")])
    assert (status, body) == (403, b"Forbidden\n")
    # no header: the peer (127.0.0.1, not in the source) is the client
    status, _, _, _ = get(server, "/admin/x")
    assert status == 403


def test_source_judges_the_proxy_protocol_client_on_a_unix_listener(serve, tmp_path):
    """A Unix listener behind a PROXY header: the header's source address is
    the client, so "unix" no longer admits it and its address is judged."""
    sock = str(tmp_path / "p.sock")
    server = serve(
        "route_app:app",
        listener={"unix": sock, "proxy": {"protocol": "v1"}},
        routes=[
            {"path": "/admin/*", "source": ["10.0.0.0/8"], "app": {}},
            {"path": "/unix/*", "source": ["unix"], "app": {}},
        ],
    )

    def ask(src, target):
        req = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        return raw(server, f"PROXY TCP4 {src} 192.0.2.2 1000 80\r\n".encode() + req)[0]

    assert ask("10.9.8.7", "/admin/x") == 200
    assert ask("192.0.2.1", "/admin/x") == 403
    assert ask("10.9.8.7", "/unix/x") == 403


def test_files_root_swapped_by_symlink_is_served_soon(serve, tmp_path):
    """Workers keep the root directory open for a second at most: a deploy
    that swaps the root's symlink is served from the new tree soon after."""
    for name in ("v1", "v2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.js").write_text(name)
    (tmp_path / "current").symlink_to(tmp_path / "v1")
    server = serve(
        "route_app:app", routes=[{"path": "/static/*", "files": {"root": str(tmp_path / "current")}}]
    )
    assert httpx.get(server.url + "/static/app.js", timeout=10).text == "v1"
    tmp = tmp_path / "next"
    tmp.symlink_to(tmp_path / "v2")
    tmp.rename(tmp_path / "current")  # atomic, as deploy tools do
    wait_for(lambda: httpx.get(server.url + "/static/app.js", timeout=10).text == "v2", 10,
             "the new tree served")
