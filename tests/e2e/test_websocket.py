"""WebSockets end to end: Debian's `websockets` client (asyncio API) and raw
sockets against a raw ASGI app and a FastAPI/Starlette app."""

import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import struct

import httpx
import pytest
import websockets

KEY = base64.b64encode(os.urandom(16)).decode()


@pytest.fixture(scope="module")
def raw(serve_module):
    return serve_module("ws_app:app", websocket={"max_message": "256KiB"})


@pytest.fixture(scope="module")
def fa(serve_module):
    return serve_module("ws_fastapi_app:app")


def ws_url(server, path):
    return f"ws://127.0.0.1:{server.port}{path}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def codes(server):
    return httpx.get(server.url + "/codes", timeout=10).json()


def wait_code(server, n):
    """The app's recorded disconnect codes once there are n of them."""
    for _ in range(500):
        c = codes(server)
        if len(c) >= n:
            return c
        asyncio.run(asyncio.sleep(0.01))
    raise AssertionError(f"the app recorded {codes(server)}, expected {n} entries")


# ---- raw sockets ---------------------------------------------------------------


def frame(b0, payload, mask=b"\x01\x02\x03\x04"):
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Raw:
    def __init__(self, server, path, extra=b""):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n".encode()
            + extra + b"\r\n")
        self.buf = b""

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head.decode("latin-1") + "\r\n"

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        b0, b1 = self.read(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.read(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self.read(8))
        return b0 & 0x0F, self.read(n)

    def eof(self):
        return self.sock.recv(1) == b""


def close_code(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


# ---- handshake ---------------------------------------------------------------------


def test_handshake_accept_value_and_extra_headers(raw):
    c = Raw(raw, "/echo")
    head = c.head()
    assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n")
    want = base64.b64encode(
        hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert f"\r\nSec-WebSocket-Accept: {want}\r\n" in head
    assert "\r\nx-ws: yes\r\n" in head


def test_wrong_version_gets_426(raw):
    s = socket.create_connection(("127.0.0.1", raw.port), timeout=10)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
              b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 8\r\n\r\n")
    head = s.recv(4096).decode()
    assert head.startswith("HTTP/1.1 426 ")
    assert "\r\nSec-WebSocket-Version: 13\r\n" in head


def test_bad_key_gets_400(raw):
    s = socket.create_connection(("127.0.0.1", raw.port), timeout=10)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
              b"Sec-WebSocket-Key: not-base64\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 400 ")


def test_scope(raw):
    async def go():
        async with websockets.connect(ws_url(raw, "/scope?x=1"), subprotocols=["a", "b"]) as ws:
            return json.loads(await ws.recv())

    s = run(go())
    assert s["type"] == "websocket"
    assert s["scheme"] == "ws"
    assert (s["path"], s["raw_path"], s["query_string"]) == ("/scope", "/scope", "x=1")
    assert s["http_version"] == "1.1"
    assert s["subprotocols"] == ["a", "b"]
    assert s["asgi"]["version"] == "3.0"
    assert s["has_method"] is False
    assert s["extensions"] == ["websocket.http.response"]
    assert "sec-websocket-key" in s["header_names"]
    assert s["client"][0] == "127.0.0.1" and s["server"][0] == "127.0.0.1"


# ---- messages ------------------------------------------------------------------------


def test_echo_text_binary_and_subprotocol(raw):
    async def go():
        async with websockets.connect(ws_url(raw, "/echo"), subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            await ws.send("héllo ☃")
            assert await ws.recv() == "héllo ☃"
            await ws.send(b"\x00\xff" * 10)
            assert await ws.recv() == b"\x00\xff" * 10
            await ws.send("")
            assert await ws.recv() == ""

    run(go())


def test_large_and_fragmented_messages(raw):
    big = os.urandom(200 * 1024)

    async def go():
        async with websockets.connect(ws_url(raw, "/echo"), max_size=None) as ws:
            await ws.send(big)
            assert await ws.recv() == big
            await ws.send(["frag", "men", "ted"])  # one message, three frames
            assert await ws.recv() == "fragmented"

    run(go())


def test_message_over_max_message_closes_1009(raw):
    async def go():
        async with websockets.connect(ws_url(raw, "/echo"), max_size=None) as ws:
            await ws.send(b"x" * (256 * 1024 + 1))
            with pytest.raises(websockets.ConnectionClosedError):
                await ws.recv()
            return ws.close_code

    n = len(codes(raw))
    assert run(go()) == 1009
    assert wait_code(raw, n + 1)[-1] == 1009


def test_many_messages_in_a_burst_arrive_in_order(raw):
    async def go():
        async with websockets.connect(ws_url(raw, "/echo")) as ws:
            for i in range(500):
                await ws.send(f"m{i}")
            return [await ws.recv() for _ in range(500)]

    assert run(go()) == [f"m{i}" for i in range(500)]


# ---- closing --------------------------------------------------------------------------


def test_client_close_code_reaches_the_app(raw):
    async def go():
        ws = await websockets.connect(ws_url(raw, "/echo"))
        await ws.close(code=4321, reason="done")
        return ws.close_code

    n = len(codes(raw))
    assert run(go()) == 4321  # echoed
    assert wait_code(raw, n + 1)[-1] == 4321


def test_app_close_code_and_reason_reach_the_client(raw):
    async def go():
        async with websockets.connect(ws_url(raw, "/close-app")) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    assert run(go()) == (4001, "bye")


def test_app_close_then_disconnect_event(raw):
    async def go():
        async with websockets.connect(ws_url(raw, "/echo")) as ws:
            await ws.send("close-me")
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    n = len(codes(raw))
    assert run(go()) == (4000, "asked")
    assert wait_code(raw, n + 1)[-1] == 4000


def test_send_after_close_raises_client_disconnected(raw):
    async def go():
        async with websockets.connect(ws_url(raw, "/send-after-close")) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()

    n = len(codes(raw))
    run(go())
    assert wait_code(raw, n + 1)[-1] == "ClientDisconnected"


def test_app_that_returns_after_accept_closes_1000(raw):
    async def go():
        async with websockets.connect(ws_url(raw, "/return")) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(go()) == 1000


def test_app_that_raises_after_accept_closes_1011(raw):
    async def go():
        async with websockets.connect(ws_url(raw, "/raise-after")) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code

    mark = raw.mark()
    assert run(go()) == 1011
    assert "boom after accept" in raw.stderr_since(mark)


def test_dropped_connection_is_1006(raw):
    n = len(codes(raw))
    c = Raw(raw, "/echo")
    assert c.head().startswith("HTTP/1.1 101")
    c.sock.close()
    assert wait_code(raw, n + 1)[-1] == 1006


# ---- rejection -------------------------------------------------------------------------


@pytest.mark.parametrize("path,status", [("/reject", 403), ("/noaccept", 403),
                                         ("/raise-before", 500)])
def test_rejected_handshakes(raw, path, status):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await websockets.connect(ws_url(raw, path))
        return e.value.status_code

    assert run(go()) == status


def test_denial_response_extension(raw):
    c = Raw(raw, "/deny")
    head = c.head()
    assert head.startswith("HTTP/1.1 401 ")
    assert c.read(4) == b"nope"


# ---- protocol violations (raw frames) -----------------------------------------------------


@pytest.mark.parametrize("wire,code", [
    (frame(0x81, b"plain", mask=b""), 1002),              # unmasked
    (frame(0xC1, b"x"), 1002),                            # RSV1 without an extension
    (frame(0x83, b"x"), 1002),                            # reserved opcode
    (frame(0x89, b"p" * 126), 1002),                      # control frame over 125 bytes
    (frame(0x80, b"x"), 1002),                            # continuation without a start
    (frame(0x81, b"\xce\xba\xed\xa0\x80"), 1007),         # a surrogate: not UTF-8
    (frame(0x88, struct.pack("!H", 1005)), 1002),         # a code that may not be sent
    (frame(0x88, struct.pack("!H", 1000) + b"\xff"), 1007),  # reason not UTF-8
])
def test_violations_close_with_their_code(raw, wire, code):
    n = len(codes(raw))
    c = Raw(raw, "/echo")
    assert c.head().startswith("HTTP/1.1 101")
    c.sock.sendall(wire)
    op, payload = c.frame()
    assert (op, close_code(payload)) == (8, code)
    assert c.eof()
    assert wait_code(raw, n + 1)[-1] == code


def test_ping_gets_pong_between_fragments(raw):
    c = Raw(raw, "/echo")
    assert c.head().startswith("HTTP/1.1 101")
    c.sock.sendall(frame(0x01, b"ab") + frame(0x89, b"hi"))
    assert c.frame() == (0xA, b"hi")
    c.sock.sendall(frame(0x80, b"cd"))
    assert c.frame() == (0x1, b"abcd")
    c.sock.sendall(frame(0x88, struct.pack("!H", 1000)))
    assert c.frame() == (0x8, struct.pack("!H", 1000))
    assert c.eof()


# ---- FastAPI / Starlette ------------------------------------------------------------------


def test_fastapi_websocket_endpoint(fa):
    async def go():
        url = ws_url(fa, "/chat/lobby?q=1")
        async with websockets.connect(url, subprotocols=["chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            await ws.send("hi")
            return json.loads(await ws.recv())

    assert run(go()) == {"room": "lobby", "echo": "hi", "q": "1"}


def test_fastapi_close_before_accept_is_403(fa):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await websockets.connect(ws_url(fa, "/deny"))
        return e.value.status_code

    assert run(go()) == 403


def test_starlette_websocket_endpoint(fa):
    async def go():
        async with websockets.connect(ws_url(fa, "/endpoint")) as ws:
            await ws.send(b"abc")
            got = await ws.recv()
            await ws.close(code=1001)
            return got

    assert run(go()) == b"cba"
    for _ in range(500):
        seen = httpx.get(fa.url + "/seen", timeout=10).json()
        if 1001 in seen:
            break
        asyncio.run(asyncio.sleep(0.01))
    assert 1001 in seen


# ---- keepalive ------------------------------------------------------------------------------


def test_keepalive_pings_keep_an_answering_client_and_cut_a_silent_one(serve):
    server = serve("ws_app:app", websocket={"ping_interval": "100ms", "ping_timeout": "1s"})

    async def go():
        async with websockets.connect(ws_url(server, "/echo"), ping_interval=None) as ws:
            await asyncio.sleep(1.5)  # several server pings, answered by the client
            await ws.send("alive")
            return await ws.recv()

    assert run(go()) == "alive"
    c = Raw(server, "/echo")
    assert c.head().startswith("HTTP/1.1 101")
    assert c.frame() == (0x9, b"")  # a ping; never answered
    with pytest.raises((EOFError, ConnectionResetError)):
        while True:
            c.frame()
    assert wait_code(server, 2)[-1] == 1006


# ---- shutdown ---------------------------------------------------------------------------------


def test_sigterm_closes_open_websockets_with_1001(serve):
    server = serve("ws_app:app")

    async def go():
        async with websockets.connect(ws_url(server, "/echo")) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            server.proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(go()) == 1001
    assert server.wait() == 0


# ---- access log ---------------------------------------------------------------------------------


def test_one_access_log_line_when_the_websocket_ends(serve, tmp_path):
    log = tmp_path / "access.log"
    server = serve("ws_app:app", log={"access": str(log)})

    async def go():
        async with websockets.connect(ws_url(server, "/echo?a=1"),
                                      user_agent_header="ws-test/1") as ws:
            for m in ("one", "two", b"three"):
                await ws.send(m)
                await ws.recv()
            await ws.close(code=4002)

    run(go())

    def ws_lines():
        if not log.exists():
            return []
        return [json.loads(x) for x in log.read_text().splitlines() if '"status":101' in x]

    for _ in range(500):
        if ws_lines():
            break
        asyncio.run(asyncio.sleep(0.01))
    [line] = ws_lines()
    assert (line["method"], line["path"], line["status"]) == ("GET", "/echo", 101)
    assert line["user_agent"] == "ws-test/1"
    assert line["ws_close"] == 4002
    assert (line["ws_messages_in"], line["ws_messages_out"]) == (3, 3)
    assert line["ws_bytes_in"] == line["bytes_out"] == 11
    assert line["duration"] > 0


# ---- TLS -----------------------------------------------------------------------------------------


def test_wss_echo_and_scope_scheme(serve, tmp_path):
    import ssl
    import subprocess

    from conftest import ROOT

    subprocess.run(["sh", str(ROOT / "tools" / "testcerts.sh"), str(tmp_path)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = serve("ws_app:app", listener={
        "tcp": "127.0.0.1:0",
        "tls": {"cert": str(tmp_path / "server.pem"), "key": str(tmp_path / "server.key")}})
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    url = f"wss://localhost:{server.port}"

    async def go():
        async with websockets.connect(url + "/echo", ssl=ctx) as ws:
            big = os.urandom(100_000)
            await ws.send(big)
            assert await ws.recv() == big
        async with websockets.connect(url + "/scope", ssl=ctx) as ws:
            return json.loads(await ws.recv())

    s = run(go())
    assert s["scheme"] == "wss"
    assert "tls" in s["extensions"]


def test_a_reload_closes_open_websockets_with_1012(serve):
    server = serve("ws_app:app", workers=1)
    server.wait_serving()

    async def go():
        async with websockets.connect(ws_url(server, "/echo")) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            server.proc.send_signal(signal.SIGHUP)  # the old worker drains for a restart
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)
            return ws.close_code

    assert run(go()) == 1012  # Service Restart: the client may reconnect at once
    server.wait_log("reload: generation 2 ready")
