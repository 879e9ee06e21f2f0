"""HTTP details where RFC 9110/9112 leave one right answer: a higher 1.x
minor version, and the request-target length limit as a config key."""

import json

from conftest import free_port, read_response


class FirstLine:
    """A socket file that remembers the first line read from it."""

    def __init__(self, f):
        self.f, self.first = f, None

    def readline(self, *args):
        line = self.f.readline(*args)
        if self.first is None:
            self.first = line
        return line

    def __getattr__(self, name):
        return getattr(self.f, name)


def exchange(server, raw: bytes):
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(raw)
        tee = FirstLine(f)
        status, headers, body, _ = read_response(tee)
    return tee.first, status, headers, body


def test_a_higher_minor_version_is_served_as_http_11(serve):
    # RFC 9110 6.2 / RFC 9112 2.3: process it as the highest 1.x we implement.
    server = serve("scope_app:app")
    line, status, headers, body = exchange(server, b"GET /v HTTP/1.2\r\nHost: x\r\n\r\n")
    assert (line, status) == (b"HTTP/1.1 200 OK\r\n", 200)
    assert json.loads(body)["http_version"] == "1.1"
    assert "close" not in headers.get("connection", "")  # 1.1 semantics: kept alive
    # ... with 1.1's rules: Host is required.
    _, status, _, _ = exchange(server, b"GET /v HTTP/1.9\r\n\r\n")
    assert status == 400


def test_other_major_versions_are_505(serve):
    server = serve("scope_app:app")
    for version in (b"HTTP/2.0", b"HTTP/0.9", b"HTTP/3.0"):
        _, status, _, _ = exchange(server, b"GET / " + version + b"\r\nHost: x\r\n\r\n")
        assert status == 505, version


def test_a_fragment_in_the_target_is_400_but_an_encoded_one_is_data(serve):
    server = serve("scope_app:app")
    _, status, _, _ = exchange(server, b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400
    _, status, _, body = exchange(server, b"GET /a%23b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and json.loads(body)["path"] == "/a#b"


def target_status(server, length: int) -> int:
    path = b"/" + b"a" * (length - 1)
    _, status, _, _ = exchange(server, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    return status


def test_max_request_target_sets_the_414_limit(serve):
    server = serve("scope_app:app", limits={"max_request_target": "1KiB"})
    assert target_status(server, 1024) == 200
    assert target_status(server, 1025) == 414


def test_the_default_request_target_limit_is_8kib(serve):
    server = serve("scope_app:app")
    assert target_status(server, 8192) == 200
    assert target_status(server, 8193) == 414


def test_a_target_limit_above_the_head_limit_still_answers_414(serve):
    # The target is part of the head: max_header_bytes - 64 takes effect.
    server = serve(
        "scope_app:app", limits={"max_request_target": "64KiB", "max_header_bytes": "8KiB"}
    )
    assert target_status(server, 8192 - 64) == 200
    assert target_status(server, 8192 - 63) == 414
    assert target_status(server, 20000) == 414


def test_a_listener_may_override_max_request_target(serve):
    port = free_port()
    server = serve(
        "scope_app:app",
        listener={"tcp": f"127.0.0.1:{port}", "limits": {"max_request_target": "512"}},
        limits={"max_request_target": "4KiB"},
    )
    assert target_status(server, 512) == 200
    assert target_status(server, 513) == 414
