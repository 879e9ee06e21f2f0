"""send() never loses data, and raises when it should.

What an app passed to send() is the server's to deliver, even when the app
fails right after (write batching must not drop it); what cannot be a valid
response any more is cut short by closing the connection. While nothing of
the response was committed, a failure is still a clean 500. Once the server
knows the client is gone, send() raises saltare.ClientDisconnected.
"""

import io
import socket
import struct
import time

import httpx
import pytest
from conftest import read_response

APP = "lifecycle_app:app"


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module(APP, timeouts={"shutdown": "2s"})


def raw_get(server, path: bytes) -> bytes:
    """The raw bytes the server sends for GET `path`, until it closes."""
    with server.connect() as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


def state(server):
    return httpx.get(server.url + "/state", timeout=10).json()


def wait_until(what, pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def test_bytes_sent_before_an_exception_reach_the_client(server):
    data = raw_get(server, b"/raise-after-body")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked\r\n" in data.lower()
    # The chunk the app sent, then the close: no last chunk, so the client
    # knows the response is incomplete.
    assert data.endswith(b"\r\n\r\n7\r\npartial\r\n")


def test_bytes_sent_before_returning_mid_body_reach_the_client(server):
    data = raw_get(server, b"/return-mid-body")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 10\r\n" in data.lower()
    assert data.endswith(b"\r\n\r\n01234")  # 5 of 10 bytes, then the close


def test_more_than_content_length_sends_what_fits_then_closes(server):
    data = raw_get(server, b"/overrun")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\n0123456789")
    server.wait_log("more body bytes than the Content-Length")


@pytest.mark.parametrize("path", [b"/overrun-first", b"/start-twice", b"/str-body", b"/start-only"])
def test_a_failure_before_any_body_is_still_a_500(server, path):
    data = raw_get(server, path)
    f = io.BytesIO(data)
    status, headers, body, _ = read_response(f)
    assert status == 500, data
    assert headers["connection"] == "close"
    assert f.read() == b""  # one whole response, nothing of the failed one


def leave(s, how):
    """A reset (SO_LINGER 0), or a half-close: both mean the client is gone."""
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    else:
        s.shutdown(socket.SHUT_WR)  # and it keeps its socket open (closed at teardown)


@pytest.mark.parametrize("how", ["reset", "half-close"])
def test_send_raises_client_disconnected_when_the_client_leaves_mid_stream(server, how):
    with server.connect() as s:
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        got = 0
        while got < 16384:  # the stream is flowing
            got += len(s.recv(65536))
        before = state(server)["sent_chunks"]
        leave(s, how)
        wait_until(
            "send() raised ClientDisconnected",
            lambda: state(server)["send_error"] == "saltare.ClientDisconnected",
        )
        assert state(server)["sent_chunks"] >= before
    httpx.get(server.url + "/reset-state")


def test_a_streaming_response_stops_when_its_client_resets(server):
    s = server.connect()
    s.sendall(b"GET /starlette-stream HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while got.count(b"\n") < 30:
        got += s.recv(65536)
    leave(s, "reset")
    wait_until("the generator was closed", lambda: state(server)["gen_stopped"])
    yielded = state(server)["gen_yielded"]
    time.sleep(0.5)  # a generator still running would yield ~250 more by now
    assert state(server)["gen_yielded"] == yielded
