"""Malformed and awkward requests over raw sockets against the real binary.

Every malformed request gets its exact status with `Connection: close`, the
server then closes the socket, and the next connection is served as usual.
The awkward-but-valid ones (long pipelines, withheld bodies,
bodiless statuses) get exactly the bytes HTTP/1.1 promises.
"""

import io
import json
import select
import socket
import time

import pytest
from conftest import lines_after, read_head, read_response, wait_for

MAX_BODY = 1024
MAX_HEADER_BYTES = 16384  # the default
MAX_HEADERS = 100  # the default


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module(
        "edge_app:app",
        lifespan="on",
        limits={"max_body": f"{MAX_BODY}", "max_keepalive_requests": 0},
        timeouts={"header": "5s", "keep_alive": "5s", "shutdown": "10s"},
        log={"access": str(serve_module.directory / "access.log")},
    )


def read_until_closed(s) -> bytes:
    """Everything the server sends until it closes; fails if it never does."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data  # closed with unread input: still closed
        except socket.timeout:
            raise AssertionError(f"the server kept the connection open after {data!r}")
        if not chunk:
            return data
        data += chunk


def exchange(server, raw: bytes, *, half_close: bool = False) -> bytes:
    with server.connect() as s:
        s.sendall(raw)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return read_until_closed(s)


def parse(data: bytes):
    """(status, headers, body) of the one response `data` must hold."""
    f = io.BytesIO(data)
    status, headers, body, _ = read_response(f)
    assert f.read() == b"", "bytes after the response"
    return status, headers, body


def served_normally(server) -> None:
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body, _ = read_response(f)
    assert status == 200
    assert json.loads(body)["path"] == "/after"


def head_of(extra: bytes, version: bytes = b"HTTP/1.1", method: bytes = b"GET") -> bytes:
    return method + b" / " + version + b"\r\n" + extra + b"\r\n"


HOST = b"Host: x\r\n"
CHUNKED_POST = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

VECTORS = [
    # request line
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ("non-token method", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("two spaces", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("bare CR in target", b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("fragment in target", b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("malformed version", b"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400),
    ("lowercase version", b"GET / http/1.1\r\nHost: x\r\n\r\n", 400),
    ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("HTTP/3.0", b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    ("HTTP/0.9", b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505),
    ("asterisk without OPTIONS", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("absolute-form with userinfo", b"GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("absolute-form not http", b"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("CONNECT", b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 501),
    ("target too long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    # header fields
    ("missing Host", head_of(b""), 400),
    ("duplicate Host", head_of(HOST + b"Host: y\r\n"), 400),
    ("NUL in a name", head_of(HOST + b"X-A\x00: y\r\n"), 400),
    ("space before the colon", head_of(HOST + b"X-A : y\r\n"), 400),
    ("empty name", head_of(HOST + b": y\r\n"), 400),
    ("no colon", head_of(HOST + b"X-A y\r\n"), 400),
    ("obs-fold", head_of(HOST + b"X-A: y\r\n z\r\n"), 400),
    ("bare CR in a value", head_of(HOST + b"X-A: y\rz\r\n"), 400),
    ("bare CR ending a line", head_of(HOST + b"X-A: y\r"), 400),
    ("DEL in a value", head_of(HOST + b"X-A: y\x7fz\r\n"), 400),
    (
        "head over max_header_bytes",
        head_of(HOST + b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n"),
        431,
    ),
    (
        "too many headers",
        head_of(HOST + b"".join(b"X-%d: y\r\n" % i for i in range(MAX_HEADERS))),
        431,
    ),
    # framing and smuggling
    ("Content-Length not digits", head_of(HOST + b"Content-Length: 1a\r\n", method=b"POST"), 400),
    ("Content-Length with a sign", head_of(HOST + b"Content-Length: +1\r\n", method=b"POST"), 400),
    ("Content-Length negative", head_of(HOST + b"Content-Length: -1\r\n", method=b"POST"), 400),
    ("Content-Length hex", head_of(HOST + b"Content-Length: 0x1\r\n", method=b"POST"), 400),
    ("Content-Length empty", head_of(HOST + b"Content-Length: \r\n", method=b"POST"), 400),
    (
        "Content-Length too big for 64 bits",
        head_of(HOST + b"Content-Length: 99999999999999999999\r\n", method=b"POST"),
        400,
    ),
    (
        "differing Content-Lengths",
        head_of(HOST + b"Content-Length: 1\r\nContent-Length: 2\r\n", method=b"POST") + b"ab",
        400,
    ),
    (
        "differing Content-Length list",
        head_of(HOST + b"Content-Length: 1, 2\r\n", method=b"POST") + b"ab",
        400,
    ),
    (
        "Content-Length with Transfer-Encoding",
        head_of(HOST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", method=b"POST")
        + b"0\r\n\r\n",
        400,
    ),
    (
        "Transfer-Encoding on HTTP/1.0",
        head_of(b"Transfer-Encoding: chunked\r\n", b"HTTP/1.0", b"POST") + b"0\r\n\r\n",
        400,
    ),
    ("Transfer-Encoding gzip", head_of(HOST + b"Transfer-Encoding: gzip\r\n", method=b"POST"), 501),
    (
        "chunked not final",
        head_of(HOST + b"Transfer-Encoding: chunked, gzip\r\n", method=b"POST"),
        501,
    ),
    (
        "chunked twice",
        head_of(
            HOST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            method=b"POST",
        ),
        501,
    ),
    ("empty Transfer-Encoding", head_of(HOST + b"Transfer-Encoding: \r\n", method=b"POST"), 400),
    ("chunk size not hex", CHUNKED_POST + b"zz\r\nab\r\n0\r\n\r\n", 400),
    ("chunk size overflow", CHUNKED_POST + b"1" + b"0" * 17 + b"\r\n", 400),
    ("chunk size with bare LF", CHUNKED_POST + b"2\nab\r\n0\r\n\r\n", 400),
    ("chunk data without CRLF", CHUNKED_POST + b"2\r\nabX\r\n0\r\n\r\n", 400),
    ("chunk extension with a CTL", CHUNKED_POST + b"2;a=\x01\r\nab\r\n0\r\n\r\n", 400),
    ("malformed trailer", CHUNKED_POST + b"2\r\nab\r\n0\r\nBad Trailer\r\n\r\n", 400),
    # limits.max_body
    (
        "Content-Length over max_body",
        head_of(HOST + b"Content-Length: %d\r\n" % (MAX_BODY + 1), method=b"POST"),
        413,
    ),
    (
        "100-continue over max_body",
        head_of(
            HOST + b"Expect: 100-continue\r\nContent-Length: %d\r\n" % (MAX_BODY + 1),
            method=b"POST",
        ),
        413,
    ),
    (
        "chunked body over max_body",
        CHUNKED_POST + b"%x\r\n%s\r\n0\r\n\r\n" % (MAX_BODY + 1, b"z" * (MAX_BODY + 1)),
        413,
    ),
]


@pytest.mark.parametrize("raw,status", [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS])
def test_malformed_request_gets_its_status_and_a_closed_connection(server, raw, status):
    data = exchange(server, raw)
    assert data, "the server closed without an answer"
    got, headers, body = parse(data)  # one response and nothing after it
    assert got == status, data[:200]
    assert headers["connection"] == "close"
    assert b"HTTP/1.1 100" not in data  # never an interim response first
    served_normally(server)


def test_core_errors_are_in_the_access_log(server):
    access = server.log_path.parent / "access.log"
    mark = server.mark(access)  # earlier tests of this module logged too
    exchange(server, b"GET /no-host HTTP/1.1\r\n\r\n")
    exchange(server, b"GET /bad-version HTTP/9.9\r\nHost: x\r\n\r\n")
    served_normally(server)

    def entries_of_this_test():
        # A line of the previous test may land after the mark: a response
        # reaches its client before the turn's access-log write.
        # This test's lines start at its first request.
        found = [json.loads(line) for line in lines_after(access, mark)]
        first = next((i for i, e in enumerate(found) if e["path"] == "/no-host"), None)
        return found[first:] if first is not None and len(found) - first >= 3 else None

    entries = wait_for(entries_of_this_test, 10, "three access log lines",
                       lambda: f": {lines_after(access, mark)}")
    # This test's own requests, in order; a head the core refused still
    # logs the method and path its request line gave.
    assert [e["status"] for e in entries] == [400, 505, 200]
    assert [(e["method"], e["path"]) for e in entries] == [
        ("GET", "/no-host"), ("GET", "/bad-version"), ("GET", "/after")]
    for entry in entries:
        assert entry["client"].startswith("127.0.0.1:")
        assert set(entry) >= {"time", "method", "path", "query", "status", "bytes_in",
                              "bytes_out", "duration", "user_agent", "referer", "listener", "pid"}


# ---- valid but awkward ------------------------------------------------------


def test_half_close_before_the_answer_is_a_disconnect(server):
    # A close and a half-close look alike from the server: an EOF while the
    # app works means the client is gone (nginx and uvicorn decide the same),
    # so the app's receive() says http.disconnect and no response is written.
    raw = b"POST /wait-disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
    assert exchange(server, raw, half_close=True) == b""
    served_normally(server)


def test_pipelined_requests_then_a_half_close_end_in_whole_responses(server):
    # Responses the app finished before the EOF was seen go out whole and in
    # order; then the connection closes instead of serving a client that left.
    raw = b"".join(b"GET /p?%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(300))
    data = exchange(server, raw, half_close=True)
    f = io.BytesIO(data)
    i = 0
    while f.tell() < len(data):
        status, _, body, _ = read_response(f)
        assert status == 200
        assert json.loads(body)["query"] == str(i)
        i += 1


def test_a_long_pipeline_is_answered_in_order(server):
    n = 2000
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(b"".join(b"GET /p?%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
        for i in range(n):
            status, _, body, _ = read_response(f)
            assert status == 200
            assert json.loads(body)["query"] == str(i)


def test_unread_body_after_expect_100_closes_instead_of_guessing(server):
    with server.connect() as s:
        s.sendall(
            b"POST /no-read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 10\r\n\r\n"
        )
        f = s.makefile("rb")
        status, headers, body, _ = read_response(f)
        assert (status, body) == (200, b"not read")
        assert headers["connection"] == "close"
        # Reused anyway: the request is never run, the connection just ends.
        s.sendall(b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_until_closed(s) == b""
    served_normally(server)


def test_zero_length_chunked_upload_keeps_the_connection(server):
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(CHUNKED_POST + b"0\r\n\r\n")
        status, headers, body, _ = read_response(f)
        assert status == 200 and json.loads(body)["length"] == 0
        assert "connection" not in headers
        s.sendall(CHUNKED_POST + b"3;ext\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n")
        status, _, body, _ = read_response(f)
        assert json.loads(body)["length"] == 3


def test_http10_without_host_is_served(server):
    status, headers, body = parse(exchange(server, b"GET /old HTTP/1.0\r\n\r\n"))
    assert status == 200
    assert headers["connection"] == "close"
    assert json.loads(body)["host"] == ""


def test_absolute_form_target_wins_over_the_host_header(server):
    raw = b"GET http://real.example:81/abs?q=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(raw)
        status, _, body, _ = read_response(f)
    got = json.loads(body)
    assert status == 200
    assert (got["path"], got["query"], got["host"]) == ("/abs", "q=1", "real.example:81")


def test_head_with_content_length_0_and_bodiless_statuses(server):
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(b"HEAD /no-read HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _, _ = read_response(f, head_request=True)
        assert status == 200 and headers["content-length"] == "8"
        s.sendall(b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_head(f)
        assert status == 204
        assert "content-length" not in headers and "transfer-encoding" not in headers
        s.sendall(b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_head(f)
        assert status == 304 and "transfer-encoding" not in headers
        # Body bytes after any of them would now be read as a status line.
        s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body, _ = read_response(f)
        assert status == 200 and json.loads(body)["path"] == "/next"


def test_body_after_the_end_raises_in_the_app(server):
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(b"GET /after-end HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f)[2] == b"ok"
        s.sendall(b"GET /last-error HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f)[2].startswith(b"RuntimeError: ")


def test_each_request_gets_its_own_copy_of_the_lifespan_state(server):
    with server.connect() as s, s.makefile("rb") as f:
        for _ in range(2):
            s.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\n\r\n")
            assert json.loads(read_response(f)[2]) == {"n": 1}


@pytest.mark.parametrize("over", [0, 1])
def test_head_exactly_at_max_header_bytes(server, over):
    base = head_of(HOST + b"X-Pad: \r\n")
    raw = head_of(HOST + b"X-Pad: " + b"a" * (MAX_HEADER_BYTES - len(base) + over) + b"\r\n")
    assert len(raw) == MAX_HEADER_BYTES + over
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(raw)
        assert read_response(f)[0] == (431 if over else 200)


@pytest.mark.parametrize("extra", [0, 1])
def test_max_headers_exactly(server, extra):
    fields = b"".join(b"X-%d: y\r\n" % i for i in range(MAX_HEADERS - 1 + extra))
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(head_of(HOST + fields))
        assert read_response(f)[0] == (431 if extra else 200)


# ---- timeouts and the Server header ----------------------------------------


def test_slowloris_is_reaped_by_the_header_timeout(serve):
    server = serve("edge_app:app", timeouts={"header": "300ms", "keep_alive": "5s"})
    server.wait_serving()  # the clock starts at accept, not at app import
    with server.connect() as s:
        started = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(200):  # a byte every 50 ms never resets the bound
            time.sleep(0.05)
            if select.select([s], [], [], 0)[0]:
                break  # answered
            s.sendall(b"X")
        # Answered after about 300 ms; a bound each byte reset would let the
        # trickle run for the loop's 10 s. A loaded machine needs the margin.
        assert time.monotonic() - started < 8
        # A partial head is answered 408 with Connection: close, then closed.
        data = read_until_closed(s)
        assert data.startswith(b"HTTP/1.1 408 ")
        assert b"\r\nConnection: close\r\n" in data
    served_normally(server)


def test_idle_keep_alive_connection_is_closed_by_its_timeout(serve):
    server = serve("edge_app:app", timeouts={"header": "30s", "keep_alive": "300ms"})
    server.wait_serving()
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f)[0] == 200
        started = time.monotonic()
        assert f.read() == b""  # (the socket's own timeout is 10 s)
        assert 0.2 < time.monotonic() - started < 8


@pytest.mark.parametrize("value", ["", "edge/1.0"])
def test_server_header_follows_the_config(serve, value):
    server = serve("edge_app:app", http={"server_header": value})
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _, headers, _, _ = read_response(f)
        s.sendall(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n")  # an error the core writes
        status, error_headers, _, _ = read_response(f)
    assert status == 505
    assert headers.get("server") == (value or None)
    assert error_headers.get("server") == (value or None)


def test_stalled_upload_is_ended_by_the_body_timeout(serve):
    # The header timeout far above the bound: only the body timeout can end it.
    server = serve("edge_app:app", timeouts={"header": "30s", "body": "300ms"})
    server.wait_serving()
    with server.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        started = time.monotonic()
        assert read_until_closed(s) == b""  # the app was reading: no answer
        assert 0.2 < time.monotonic() - started < 8
    served_normally(server)
