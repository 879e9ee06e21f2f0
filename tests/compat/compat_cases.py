"""The requests the differential test sends, identical bytes to both servers."""

import dataclasses

H = b"Host: example.com\r\n"


@dataclasses.dataclass
class Case:
    name: str
    request: bytes | list[bytes]
    head: bool = False  # responses to HEAD have no body
    app_framing: bool = False  # the app sets Content-Length itself: compare it
    scope_json: bool = False  # the body is /scope's JSON
    server_answers: bool = False  # the server, not the app, writes the response
    expect: int = 1  # final (non-1xx) responses to wait for


def Bad(name: str, request: bytes) -> Case:
    """A malformed request: the server answers it, the app never sees it."""
    return Case(name, request, server_answers=True)


def get(path: bytes, *extra: bytes, version: bytes = b"1.1") -> bytes:
    return b"GET " + path + b" HTTP/" + version + b"\r\n" + H + b"".join(extra) + b"\r\n"


def post(path: bytes, ctype: bytes, body: bytes, *extra: bytes) -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\n" + H + b"Content-Type: " + ctype + b"\r\n"
        b"Content-Length: %d\r\n" % len(body) + b"".join(extra) + b"\r\n" + body
    )


BOUNDARY = b"compatboundary"
MULTIPART = (
    b"--" + BOUNDARY + b"\r\n"
    b'Content-Disposition: form-data; name="note"\r\n\r\n'
    b"a note\r\n"
    b"--" + BOUNDARY + b"\r\n"
    b'Content-Disposition: form-data; name="file"; filename="data.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n" + bytes(range(256)) * 40 + b"\r\n"
    b"--" + BOUNDARY + b"--\r\n"
)

CASES = [
    # ---- FastAPI -------------------------------------------------------------------
    Case("fastapi-async-get", get(b"/items/7?q=tea")),
    Case("fastapi-sync-get", get(b"/sync/items/7?q=tea")),
    Case("fastapi-404", get(b"/nowhere")),
    Case("fastapi-422-path", get(b"/items/seven")),
    Case("fastapi-post-json", post(b"/items", b"application/json", b'{"name":"tea","price":2.5}')),
    Case("fastapi-sync-post-json", post(b"/sync/items", b"application/json", b'{"name":"x","price":1}')),
    Case("fastapi-422-body", post(b"/items", b"application/json", b'{"name":"tea"}')),
    Case("fastapi-bad-json", post(b"/items", b"application/json", b'{"name":')),
    Case("fastapi-405", post(b"/items/7", b"application/json", b"{}")),
    Case("fastapi-head", b"HEAD /items/7 HTTP/1.1\r\n" + H + b"\r\n", head=True),
    Case("fastapi-redirect-slash", get(b"/items/7/")),
    Case(
        "form-urlencoded",
        post(b"/form", b"application/x-www-form-urlencoded", b"name=a+b%26c&tags=x&tags=y"),
    ),
    Case("form-missing-field", post(b"/form", b"application/x-www-form-urlencoded", b"tags=x")),
    Case("upload-multipart", post(b"/upload", b"multipart/form-data; boundary=" + BOUNDARY, MULTIPART)),
    Case("cookies-set", get(b"/cookies/set")),
    Case("cookies-read", get(b"/cookies/read", b"Cookie: session=s1; theme=light\r\n")),
    Case(
        "cors-preflight",
        b"OPTIONS /items/7 HTTP/1.1\r\n" + H + b"Origin: https://allowed.example\r\n"
        b"Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: x-custom\r\n\r\n",
    ),
    Case(
        "cors-preflight-denied",
        b"OPTIONS /items/7 HTTP/1.1\r\n" + H + b"Origin: https://evil.example\r\n"
        b"Access-Control-Request-Method: DELETE\r\n\r\n",
    ),
    Case("cors-simple", get(b"/items/7", b"Origin: https://allowed.example\r\n")),
    Case("gzip", get(b"/big", b"Accept-Encoding: gzip\r\n")),
    Case("gzip-not-accepted", get(b"/big")),
    Case("trusted-host-denied", b"GET /items/7 HTTP/1.1\r\nHost: evil.example\r\n\r\n"),
    Case("trusted-host-subdomain", b"GET /items/7 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
    Case("streaming", get(b"/stream")),
    Case("streaming-sync", get(b"/sync/stream")),
    Case("streaming-head", b"HEAD /stream HTTP/1.1\r\n" + H + b"\r\n", head=True),
    Case("file-response", get(b"/file"), app_framing=True),
    Case("static-file", get(b"/static/hello.txt"), app_framing=True),
    Case("static-head", b"HEAD /static/hello.txt HTTP/1.1\r\n" + H + b"\r\n", head=True, app_framing=True),
    Case("static-missing", get(b"/static/nope.txt")),
    Case("static-traversal", get(b"/static/../compat_app.py")),
    Case("status-204", get(b"/empty")),
    Case("status-304", get(b"/not-modified")),
    # ---- the scope, as the server builds it ----------------------------------------
    Case("scope-basic", get(b"/scope/a?x=1&y=%20"), scope_json=True, app_framing=True),
    Case("scope-percent-path", get(b"/scope/a%20b%2Fc"), scope_json=True, app_framing=True),
    Case("scope-utf8-path", get(b"/scope/caf%C3%A9"), scope_json=True, app_framing=True),
    Case(
        "scope-headers",
        get(b"/scope", b"X-Dup: 1\r\nx-dup: 2\r\nX-Case: MiXeD\r\nX-Empty:\r\nX-Space:   padded   \r\n"),
        scope_json=True,
        app_framing=True,
    ),
    Case(
        "scope-obs-text",
        get(b"/scope", b"X-Latin: caf\xe9\r\n"),
        scope_json=True,
        app_framing=True,
    ),
    Case(
        "scope-absolute-form",
        b"GET http://example.com/scope/abs?q=1 HTTP/1.1\r\n" + H + b"\r\n",
        scope_json=True,
        app_framing=True,
    ),
    Case("scope-http10", get(b"/scope", version=b"1.0"), scope_json=True, app_framing=True),
    Case(
        "scope-http10-keep-alive",
        get(b"/scope", b"Connection: keep-alive\r\n", version=b"1.0"),
        scope_json=True,
        app_framing=True,
    ),
    Case("scope-connection-close", get(b"/scope", b"Connection: close\r\n"), scope_json=True, app_framing=True),
    Case(
        "scope-lowercase-method",
        b"get /scope HTTP/1.1\r\n" + H + b"\r\n",
        scope_json=True,
        app_framing=True,
    ),
    Case("scope-options-asterisk", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", scope_json=True, app_framing=True),
    Case("scope-bare-lf", b"GET /scope HTTP/1.1\nHost: example.com\n\n", scope_json=True, app_framing=True),
    # ---- request bodies ------------------------------------------------------------
    Case("body-length", post(b"/body", b"text/plain", b"hello"), app_framing=True),
    Case(
        "body-chunked",
        b"POST /body HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        app_framing=True,
    ),
    Case(
        "body-expect-continue",
        [b"POST /body HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", b"hello"],
        app_framing=True,
    ),
    Case(
        "pipelined",
        get(b"/items/1") + post(b"/body", b"text/plain", b"two") + get(b"/items/3"),
        app_framing=True,
        expect=3,
    ),
    # ---- malformed requests: the server answers, not the app -----------------------
    Bad("bad-no-host-11", b"GET /scope HTTP/1.1\r\n\r\n"),
    Bad("bad-two-hosts", b"GET /scope HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    Bad("bad-space-before-colon", b"GET /scope HTTP/1.1\r\n" + H + b"X-Bad : 1\r\n\r\n"),
    Bad("bad-obs-fold", b"GET /scope HTTP/1.1\r\n" + H + b"X-Fold: a\r\n b\r\n\r\n"),
    Bad("bad-nul-in-value", b"GET /scope HTTP/1.1\r\n" + H + b"X-Nul: a\x00b\r\n\r\n"),
    Bad("bad-content-length", b"POST /body HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n"),
    Bad("bad-two-content-lengths", b"POST /body HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
    Bad(
        "bad-cl-and-te",
        b"POST /body HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
    ),
    Bad("bad-unknown-te", b"POST /body HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n"),
    Bad("bad-chunk-size", b"POST /body HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
    Bad("bad-version", b"GET /scope HTTP/2.0\r\n" + H + b"\r\n"),
    Bad("bad-version-garbage", b"GET /scope HTTX/1.1\r\n" + H + b"\r\n"),
    Case("http-1.2", b"GET /scope HTTP/1.2\r\n" + H + b"\r\n", scope_json=True, app_framing=True),
    Bad("bad-hash-in-target", b"GET /scope#frag HTTP/1.1\r\n" + H + b"\r\n"),
    Bad("bad-space-in-target", b"GET /sc ope HTTP/1.1\r\n" + H + b"\r\n"),
    Bad("bad-long-target", b"GET /scope/" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n"),
    Bad("bad-garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
    # ---- apps that break ASGI ------------------------------------------------------
    # The app sets no length: the server frames the body; where the app
    # fails before writing anything the server answers (500).
    *(
        Case(f"app-{how}", get(b"/bad/" + how.encode()), server_answers=True)
        for how in ("raise-before-start", "return-without-start", "body-before-start", "unknown-message")
    ),
    *(
        Case(f"app-{how}", get(b"/bad/" + how.encode()))
        for how in (
            "raise-after-start",
            "return-after-start",
            "raise-mid-body",
            "return-mid-body",
            "start-twice",
            "str-body",
            "bad-header-name",
            "header-injection",
            "204-with-body",
        )
    ),
    *(
        Case(f"app-{how}", get(b"/bad/" + how.encode()), app_framing=True)
        for how in (
            "short-content-length",
            "long-content-length",
            "long-content-length-later",
            "send-after-complete",
            "raise-after-complete",
            "connection-close",
        )
    ),
    Case("app-head-with-body", b"HEAD /bad/head-with-body HTTP/1.1\r\n" + H + b"\r\n", head=True, app_framing=True),
]
