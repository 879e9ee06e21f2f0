"""http.request_id (reuse, generation, rejection; scope, response header,
access log) and http.server_timing."""

import json
import re
import subprocess

import httpx

from conftest import BIN, lines_after, read_response, wait_for

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def rid_server(serve, tmp_path, trust=False, **sections):
    log = tmp_path / "access.log"
    server = serve(
        "request_id_app:app",
        http={"request_id": {"header": "X-Request-ID", "trust_incoming": trust}, **sections},
        log={"access": str(log)},
        routes=[{"path": "/healthz", "health": {}}],
        limits={"max_body": "10"},
    )
    return server, log


def logged(log, mark, n):
    return wait_for(lambda: len(lines_after(log, mark)) >= n and lines_after(log, mark), 10,
                    f"{n} access lines")


def test_generated_ids_reach_scope_response_and_log(serve, tmp_path):
    server, log = rid_server(serve, tmp_path)
    mark = server.mark(log)
    with httpx.Client() as c:
        a = c.get(server.url + "/a")
        b = c.get(server.url + "/b", headers={"X-Request-ID": "client-chosen"})  # not trusted
    ids = [a.headers["x-request-id"], b.headers["x-request-id"]]
    assert all(HEX32.match(i) for i in ids), ids
    assert ids[0] != ids[1]
    assert [a.json()["request_id"], b.json()["request_id"]] == ids
    lines = [json.loads(l) for l in logged(log, mark, 2)]
    assert [l["request_id"] for l in lines] == ids


def test_trusted_incoming_ids_are_reused_when_valid(serve, tmp_path):
    server, log = rid_server(serve, tmp_path, trust=True)
    good = ["abc-123", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "Root=1-5759e988+x/y@z:1", "x" * 64]
    for rid in good:
        r = httpx.get(server.url + "/", headers={"x-request-id": rid})
        assert r.headers["x-request-id"] == rid
        assert r.json()["request_id"] == rid
    for bad in ["x" * 65, "has space", "semi;colon", "quote\"", "é"]:
        r = httpx.get(server.url + "/", headers={"X-Request-ID": bad.encode()})
        assert HEX32.match(r.headers["x-request-id"]), bad
        assert r.json()["request_id"] == r.headers["x-request-id"]


def test_the_apps_own_header_wins_and_core_answers_carry_the_id(serve, tmp_path):
    server, log = rid_server(serve, tmp_path, trust=True)
    r = httpx.get(server.url + "/own", headers={"X-Request-ID": "mine"})
    assert r.headers.get_list("x-request-id") == ["from-the-app"]
    assert r.json()["request_id"] == "mine"
    # an intercept route and a 413 the core answers
    assert httpx.get(server.url + "/healthz", headers={"X-Request-ID": "hz1"}).headers[
        "x-request-id"] == "hz1"
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Request-ID: big1\r\n"
                  b"Content-Length: 100\r\n\r\n")
        status, headers, _, _ = read_response(f)
    assert status == 413 and headers["x-request-id"] == "big1"


def test_websocket_scopes_carry_the_id_too(serve, tmp_path):
    import asyncio

    import websockets

    server, _ = rid_server(serve, tmp_path, trust=True)
    uri = server.url.replace("http://", "ws://") + "/ws"

    async def first_message(headers):
        async with websockets.connect(uri, extra_headers=headers) as ws:
            return json.loads(await ws.recv())

    assert asyncio.run(first_message({"X-Request-ID": "ws-abc.1"})) == {"request_id": "ws-abc.1"}
    assert HEX32.match(asyncio.run(first_message({}))["request_id"])


def test_off_by_default(serve):
    server = serve("request_id_app:app")
    r = httpx.get(server.url + "/", headers={"X-Request-ID": "abc"})
    assert r.json()["request_id"] is None
    assert "x-request-id" not in r.headers
    assert "server-timing" not in r.headers


def test_server_timing_on_app_responses_only(serve, tmp_path):
    server, _ = rid_server(serve, tmp_path, server_timing=True)
    r = httpx.get(server.url + "/slow")
    m = re.fullmatch(r"app;dur=(\d+)\.(\d{3})", r.headers["server-timing"])
    assert m, r.headers["server-timing"]
    assert int(m.group(1)) >= 200  # the app slept 0.2 s before answering
    assert "server-timing" not in httpx.get(server.url + "/healthz").headers


def test_a_bad_header_name_is_a_config_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    for name in ["X Request", "Content-Length", ""]:
        cfg.write_text('app: {target: "m:app"}\nhttp:\n  request_id: {header: "%s"}\n' % name)
        r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
        assert r.returncode == 78, r.stderr
        assert "http.request_id.header: expected a header name like" in r.stderr, r.stderr
