"""App failures become 500s or closed connections; the worker lives on."""

import httpx
import pytest
from conftest import read_response


def test_exception_before_start_is_a_500_and_the_next_request_succeeds(serve):
    server = serve("errors_app:app")
    with httpx.Client(base_url=server.url) as client:
        r = client.get("/raise")
        assert r.status_code == 500
        r = client.get("/fine")
        assert r.status_code == 200 and r.text == "ok"
    log = server.stderr()
    assert "GET /raise" in log
    assert "Boom: raised before the response started" in log  # the traceback


def test_exception_after_start_closes_the_connection(serve):
    server = serve("errors_app:app")
    with httpx.Client(base_url=server.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/raise-after-start")
        assert client.get("/fine").status_code == 200
    server.wait_log("raised in the middle of the body")


def test_returning_without_a_response_is_a_500(serve):
    server = serve("errors_app:app")
    r = httpx.get(server.url + "/no-response")
    assert r.status_code == 500
    server.wait_log("without starting a response")


def test_header_with_crlf_is_refused_with_a_500(serve):
    server = serve("errors_app:app")
    r = httpx.get(server.url + "/bad-header")
    assert r.status_code == 500
    assert "injected" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "path,expected",
    [("/bad-message", "TypeError"), ("/start-twice", "RuntimeError")],
)
def test_invalid_messages_raise_in_the_app(serve, path, expected):
    server = serve("errors_app:app")
    r = httpx.get(server.url + path)
    assert r.status_code == 200
    assert r.text == expected


def test_body_before_start_is_a_500(serve):
    server = serve("errors_app:app")
    assert httpx.get(server.url + "/body-before-start").status_code == 500
    server.wait_log("RuntimeError")


def test_requests_do_not_leak_python_objects(serve):
    server = serve("blocks_app:app", limits={"max_keepalive_requests": 0})
    with server.connect() as s:
        f = s.makefile("rb")

        def request(raw):
            s.sendall(raw)
            status, _, body, _ = read_response(f)
            assert status == 200
            return body

        def burst(n):
            for i in range(n):
                body = b"x" * (i % 300)
                request(
                    b"POST /echo/%d?q=%d HTTP/1.1\r\nHost: x\r\nX-N: %d\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (i % 7, i, i, len(body), body)
                )
                request(b"GET /get HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n")

        burst(300)  # warm caches (interned strings, freelists)
        before = int(request(b"GET /blocks HTTP/1.1\r\nHost: x\r\n\r\n"))
        burst(1500)
        after = int(request(b"GET /blocks HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert after - before < 300, f"{after - before} blocks more after 3000 requests"
