"""HTTP/1.1 behaviour of raw ASGI apps over real sockets."""

import hashlib
import json

import httpx
from conftest import read_head, read_response


def test_keep_alive_serves_several_requests_on_one_connection(serve):
    server = serve("scope_app:app")
    ports = set()
    with httpx.Client(base_url=server.url) as client:
        for i in range(5):
            r = client.get(f"/hello/{i}", params={"n": i})
            assert r.status_code == 200
            scope = r.json()
            assert scope["path"] == f"/hello/{i}"
            assert scope["query_string"] == f"n={i}"
            ports.add(scope["client"][1])
    assert len(ports) == 1, "every request should reuse the first connection"


def test_scope_follows_the_asgi_spec(serve):
    server = serve("scope_app:app")
    r = httpx.get(server.url + "/caf%C3%A9/a%2Fb?x=%20y", headers={"X-Custom": "Value"})
    scope = r.json()
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/a/b"  # percent- and UTF-8-decoded
    assert scope["raw_path"] == "/caf%C3%A9/a%2Fb"  # as received
    assert scope["query_string"] == "x=%20y"
    assert scope["root_path"] == ""
    assert ["x-custom", "Value"] in scope["headers"]  # names lowercased, values kept
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", server.port]
    assert sorted(scope["extensions"]) == ["http.response.pathsend", "http.response.trailers"]
    assert scope["has_state"] is False


def test_pipelined_requests_are_answered_in_order(serve):
    server = serve("scope_app:app")
    with server.connect() as s:
        s.sendall(
            b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
            b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        f = s.makefile("rb")
        paths = []
        for _ in range(3):
            status, _, body, _ = read_response(f)
            assert status == 200
            paths.append(json.loads(body)["path"])
        assert paths == ["/first", "/second", "/third"]


def test_chunked_upload_reaches_the_app_intact(serve):
    server = serve("body_app:app")
    pieces = [b"a" * 10, b"b" * 5000, b"c" * 70000, b"d"]
    with server.connect() as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for p in pieces:
            s.sendall(b"%x\r\n%s\r\n" % (len(p), p))
        s.sendall(b"0\r\n\r\n")
        status, _, body, _ = read_response(s.makefile("rb"))
    assert status == 200
    got = json.loads(body)
    assert got["length"] == sum(map(len, pieces))
    assert got["md5"] == hashlib.md5(b"".join(pieces)).hexdigest()


def test_expect_100_continue_gets_the_interim_response_before_the_body(serve):
    server = serve("body_app:app")
    with server.connect() as s:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        f = s.makefile("rb")
        status, _, _ = read_head(f)
        assert status == 100  # nothing was sent yet: the server asked for it
        s.sendall(b"hello")
        status, _, body, _ = read_response(f)
    assert status == 200
    assert json.loads(body)["length"] == 5


def test_head_response_has_no_body_bytes(serve):
    server = serve("scope_app:app")
    with server.connect() as s:
        f = s.makefile("rb")
        s.sendall(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _, _ = read_response(f, head_request=True)
        assert status == 200
        assert int(headers["content-length"]) > 0  # what a GET would carry
        # Any body bytes after the HEAD response would garble this response.
        s.sendall(b"GET /after-head HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body, _ = read_response(f)
        assert status == 200
        assert json.loads(body)["path"] == "/after-head"


def test_trailers_follow_the_chunked_body(serve):
    server = serve("trailers_app:app")
    with server.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
        status, headers, body, trailers = read_response(s.makefile("rb"))
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"hello world"
    assert ("x-checksum", "abc123") in trailers


def test_http_1_0_request_gets_a_close_delimited_response(serve):
    server = serve("scope_app:app")
    with server.connect() as s:
        s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        status, _, body, _ = read_response(s.makefile("rb"))
    assert status == 200
    assert json.loads(body)["http_version"] == "1.0"
