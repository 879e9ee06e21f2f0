"""Differential test: the same app under saltare and uvicorn, the same bytes to both.

Every case in compat_cases.py is sent over a raw socket to both servers; the answers
are compared after normalising what two correct servers may legitimately
answer differently (compat_harness.normalise says what and why). Where the
answers still differ, DIFFERENCES names the RFC 9110/9112 or ASGI rule that
makes saltare's answer right, and checks saltare's answer. Differences that
are saltare bugs being fixed elsewhere are expected failures (KNOWN_BUGS).

uvicorn is Debian's python3-uvicorn 0.17.6 with uvloop and httptools.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable

import compat_harness as h
import pytest
from compat_cases import CASES

BEING_FIXED = "issue 7/6: being fixed"  # reason for KNOWN_BUGS entries


@dataclasses.dataclass
class Differ:
    rule: str  # why saltare's answer is right
    check: Callable[[dict, dict], None]  # asserts on (saltare, uvicorn), normalised
    bug: str = ""  # saltare does not answer so yet: an expected failure


def first(n: dict) -> dict:
    assert n["responses"], f"no response: {n}"
    return n["responses"][0]


def status(code: int, *, closed: bool = True) -> Callable[[dict, dict], None]:
    def check(s, u):
        assert first(s)["status"] == code, s
        assert s["closed"] is closed, s

    return check


def same_but(fix_saltare: Callable[[dict], None]) -> Callable[[dict, dict], None]:
    """Equal once fix_saltare has undone, in a copy of saltare's answer, the
    one allowed difference (and asserted that it was there)."""

    def check(s, u):
        s = json.loads(json.dumps(s, default=repr))
        fix_saltare(s)
        assert s == json.loads(json.dumps(u, default=repr))

    return check


def scope_optional_keys(s):
    scope = first(s)["body"]
    assert scope.pop("asgi") == {"version": "3.0", "spec_version": "2.4"}
    assert scope.pop("extensions") == {"http.response.trailers": {}, "http.response.pathsend": {}}
    assert scope.pop("state") == {"greeting": "hello from lifespan"}
    scope["asgi"] = {"version": "3.0", "spec_version": "2.3"}


def trailing_ows(s):
    headers = first(s)["body"]["headers"]
    assert [{"bytes": "x-space"}, {"bytes": "padded"}] in headers
    headers[headers.index([{"bytes": "x-space"}, {"bytes": "padded"}])][1]["bytes"] = "padded   "


def drop_header(name, value, *, closed=None):
    def fix(s):
        r = first(s)
        assert [name, value] in r["headers"], r["headers"]
        r["headers"].remove([name, value])
        if closed is not None:
            assert s["closed"] is closed
            s["closed"] = not closed

    return fix


def scope_field(key, value):
    def check(s, u):
        assert first(s)["status"] == 200, s
        assert first(s)["body"][key] == value

    return check


def body_then_close(body: bytes):
    def check(s, u):
        r = first(s)
        assert (r["status"], r["body"], s["closed"]) == (200, body, True), s

    return check


def kept_open(code: int, body: bytes):
    def check(s, u):
        r = first(s)
        assert (r["status"], r["body"], r["complete"], s["closed"]) == (code, body, True, False), s

    return check


DIFFERENCES = {
    "scope-basic": Differ(
        "ASGI: asgi.spec_version is the HTTP spec version the server implements "
        "(2.4: send() raises after a disconnect); 'extensions' and 'state' are "
        "optional scope keys (uvicorn 0.17.6 offers neither)",
        same_but(scope_optional_keys),
    ),
    "scope-headers": Differ(
        "RFC 9112 5 / RFC 9110 5.5: field-line = field-name ':' OWS field-value OWS; "
        "the value excludes leading and trailing whitespace",
        same_but(trailing_ows),
    ),
    "scope-http10": Differ(
        "RFC 9112 9.3: an HTTP/1.0 request without keep-alive does not persist; "
        "RFC 9112 9.6: the 'close' option says so to the client",
        same_but(drop_header("connection", "close")),
    ),
    "scope-http10-keep-alive": Differ(
        "RFC 9112 9.3 and C.2.2: an HTTP/1.0 request with 'keep-alive' persists "
        "when the server honours it, which it signals with Connection: keep-alive",
        same_but(drop_header("connection", "keep-alive", closed=False)),
    ),
    "scope-lowercase-method": Differ(
        "RFC 9110 9.1: the method token is case-sensitive; 'get' is a valid "
        "(unknown) method for the app to answer, not a syntax error",
        scope_field("method", "get"),
    ),
    "bad-no-host-11": Differ(
        "RFC 9112 3.2: a server MUST respond 400 to an HTTP/1.1 request without Host",
        status(400),
    ),
    "bad-two-hosts": Differ(
        "RFC 9112 3.2: a server MUST respond 400 to a request with more than one Host",
        status(400),
    ),
    "bad-space-before-colon": Differ(
        "RFC 9112 5.1: a server MUST reject with 400 whitespace between a field name and colon",
        status(400),
    ),
    "bad-obs-fold": Differ(
        "RFC 9112 5.2: a server MUST reject obs-fold with 400 or replace it with SP",
        status(400),
    ),
    "bad-unknown-te": Differ(
        "RFC 9112 6.1: a transfer coding the server does not understand SHOULD get 501",
        status(501),
    ),
    "bad-version": Differ(
        "RFC 9110 15.6.6, RFC 9112 2.3: HTTP/2.0 in an HTTP/1.1 request line is a "
        "major version this syntax does not serve: 505",
        status(505),
    ),
    "bad-version-garbage": Differ(
        "RFC 9112 2.3: HTTP-version is the case-sensitive 'HTTP/' DIGIT '.' DIGIT; "
        "RFC 9112 3: an invalid request-line gets 400",
        status(400),
    ),
    "bad-long-target": Differ(
        "RFC 9112 3: a request-target longer than the server parses MUST get 414 "
        "(saltare's limit: 8192 bytes)",
        status(414),
    ),
    "http-1.2": Differ(
        "RFC 9112 2.3, RFC 9110 6.2: a higher minor version of HTTP/1 is served as "
        "the highest minor the server implements, 1.1 (and the scope says 1.1)",
        scope_field("http_version", "1.1"),
    ),
    "bad-hash-in-target": Differ(
        "RFC 9112 3.2: a request-target has no fragment; '#' makes it invalid: 400",
        status(400),
    ),
    **{
        f"app-{how}": Differ(
            "ASGI HTTP: the server must not start sending the response until the "
            "first http.response.body; the app failed before one, so nothing was "
            "written and a 500 can still be sent (uvicorn writes the head at once)",
            status(500),
        )
        for how in ("raise-after-start", "return-after-start", "start-twice", "str-body")
    },
    "app-long-content-length": Differ(
        "RFC 9112 6.3: no more than Content-Length may be sent; the first body "
        "message already overruns it, nothing was written yet, so the failure "
        "is still a 500 (uvicorn sends the head and none of the body)",
        status(500),
    ),
    "app-long-content-length-later": Differ(
        "ASGI: data passed to send() is the server's to deliver; RFC 9112 6.3: no "
        "more than Content-Length may be sent, so what fits goes out, then the "
        "connection closes (uvicorn answers differently: it raises at the overrun)",
        body_then_close(b"12345"),
    ),
    "app-bad-header-name": Differ(
        "RFC 9110 5.1: a field name is a token; send() refuses 'x bad' before "
        "anything is written, so the client gets a 500 (uvicorn emits the "
        "invalid header)",
        status(500),
    ),
    "app-header-injection": Differ(
        "ASGI: an app error before anything was written becomes a 500 (uvicorn "
        "also rejects the CR LF but has marked the response started and closes)",
        status(500),
    ),
    "app-204-with-body": Differ(
        "RFC 9110 15.3.5, RFC 9112 6.3: a 204 ends at its header section; the "
        "app's body is dropped, the message is complete and the connection persists",
        kept_open(204, b""),
    ),
    "app-send-after-complete": Differ(
        "RFC 9112 9.3: the response was complete and self-delimited, so the "
        "connection persists; the extra send() raises in the app",
        kept_open(200, b"ok"),
    ),
    "app-raise-after-complete": Differ(
        "RFC 9112 9.3: the response was complete and self-delimited, so the "
        "connection persists; the app's later error is logged",
        kept_open(200, b"ok"),
    ),
}

# saltare bugs still open, each with the issue that fixes it (none today).
KNOWN_BUGS: dict = {}


def params():
    for case in CASES:
        bug = KNOWN_BUGS.get(case.name) or (
            DIFFERENCES[case.name].bug if case.name in DIFFERENCES else ""
        )
        marks = [pytest.mark.xfail(reason=bug, strict=False)] if bug else []
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compat")
    saltare, uvicorn = h.start_saltare(tmp), h.start_uvicorn(tmp)  # both start at once
    try:
        saltare.wait_ready()
        uvicorn.wait_ready()
        yield saltare, uvicorn
    finally:
        codes = saltare.stop(), uvicorn.stop()
    assert codes[0] == 0, saltare.output()


def answer(proc, case) -> dict:
    ex = h.exchange(proc.port, case.request, head=case.head, expect=case.expect)
    return h.normalise(ex, case)


@pytest.mark.parametrize("case", list(params()))
def test_same_answer_as_uvicorn(servers, case):
    saltare, uvicorn = servers
    s, u = answer(saltare, case), answer(uvicorn, case)
    differ = DIFFERENCES.get(case.name)
    if differ is None:
        assert s == u
        return
    differ.check(s, u)
    assert s != u, f"{case.name}: saltare now answers as uvicorn does; drop the allowlist entry"


def test_every_allowlisted_case_exists():
    names = {case.name for case in CASES}
    assert set(DIFFERENCES) <= names and set(KNOWN_BUGS) <= names
    assert len(names) == len(CASES), "duplicate case names"
