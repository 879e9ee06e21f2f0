"""ASGI http.response.pathsend (issue 11): advertised in scope["extensions"],
served by the core's sendfile path like a files route."""

import os
import re

import pytest

from conftest import read_response, wait_for_output


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pathsend")
    small = d / "small.txt"
    small.write_bytes(b"hello pathsend\n")
    big = d / "big.bin"
    big.write_bytes(os.urandom(3 << 20))  # several pump rounds
    (d / "empty").write_bytes(b"")
    (d / "dir").mkdir()
    return d


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("pathsend_app:app")


def get(server, target, method="GET", version="1.1"):
    with server.connect() as s:
        s.sendall(f"{method} {target} HTTP/{version}\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return read_response(s.makefile("rb"), head_request=method == "HEAD")


def test_advertised_in_scope_extensions(server):
    status, _, body, _ = get(server, "/ext/")
    assert status == 200 and b'"http.response.pathsend"' in body


def test_file_with_content_length(server, files):
    status, headers, body, _ = get(server, f"/cl/?{files / 'small.txt'}")
    assert (status, body) == (200, b"hello pathsend\n")
    assert headers["content-length"] == "15"


def test_big_file_intact_and_connection_kept(server, files):
    data = (files / "big.bin").read_bytes()
    with server.connect() as s:
        f = s.makefile("rb")
        for _ in range(2):  # the second request proves the framing ended right
            s.sendall(f"GET /cl/?{files / 'big.bin'} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, headers, body, _ = read_response(f)
            assert status == 200 and body == data
            assert headers.get("connection") != "close"


def test_file_without_content_length_is_one_chunk(server, files):
    status, headers, body, _ = get(server, f"/chunked/?{files / 'small.txt'}")
    assert headers["transfer-encoding"] == "chunked"
    assert (status, body) == (200, b"hello pathsend\n")
    status, _, body, _ = get(server, f"/chunked/?{files / 'empty'}")
    assert (status, body) == (200, b"")


def test_http10_without_length_is_close_delimited(server, files):
    status, _, body, _ = get(server, f"/chunked/?{files / 'small.txt'}", version="1.0")
    assert (status, body) == (200, b"hello pathsend\n")


def test_head_sends_no_body(server, files):
    status, headers, body, _ = get(server, f"/cl/?{files / 'small.txt'}", method="HEAD")
    assert (status, headers["content-length"], body) == (200, "15", b"")


@pytest.mark.parametrize(
    "target, error",
    [
        ("/cl/?relative/small.txt", "ValueError: http.response.pathsend: 'path' must be an absolute path"),
        ("/cl/?{d}/missing", "FileNotFoundError"),
        ("/chunked/?{d}/dir", "IsADirectoryError"),
        ("/cl/99/?{d}/small.txt", "RuntimeError: http.response.pathsend: the file has 15 bytes"),
    ],
)
def test_errors_become_500_before_anything_is_sent(server, files, target, error):
    mark = server.mark()
    status, _, _, _ = get(server, target.format(d=files))
    assert status == 500
    assert error in server.stderr_since(mark)


def test_nothing_may_follow_it(server, files):
    mark = server.mark()
    status, _, body, _ = get(server, f"/chunked/twice/?{files / 'small.txt'}")
    assert (status, body) == (200, b"hello pathsend\n")
    # The response was whole before the app's next send raised: the worker
    # logs that a moment after the client has read it.
    wait_for_output(server, re.escape("http.response.body after the body ended"), mark)


def test_starlette_file_response(server, files):
    # Debian's Starlette (0.26) streams the file itself; newer ones send
    # pathsend when scope["extensions"] offers it. Either way the bytes arrive.
    data = (files / "big.bin").read_bytes()
    status, headers, body, _ = get(server, f"/starlette/?{files / 'big.bin'}")
    assert (status, body) == (200, data)
    assert headers["content-length"] == str(len(data))
