"""permessage-deflate (RFC 7692) end to end: Debian's `websockets` client
(which offers it by default) and raw sockets against the raw ASGI echo app.
The Autobahn|Testsuite groups this stands in for: 12 and 13 (compression)."""

import asyncio
import os
import zlib

import pytest
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from test_websocket import Raw, close_code, frame

BASE = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


@pytest.fixture(scope="module")
def srv(serve_module):
    return serve_module("ws_app:app", websocket={"max_message": "256KiB"})


@pytest.fixture(scope="module")
def off(serve_module):
    return serve_module("ws_app:app", websocket={"compression": "off"})


def url(server, path="/echo"):
    return f"ws://127.0.0.1:{server.port}{path}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def text_corpus(n):
    """Compressible text of about n bytes, not one repeated byte."""
    words = ["saltare", "websocket", "deflate", "window", "message", "κόσμε", "☃"]
    out, i = [], 0
    while sum(len(w) + 1 for w in out) < n:
        out.append(words[(i * 7 + i // 5) % len(words)])
        i += 1
    return " ".join(out)


def deflate_payload(data, bits=15):
    """A message payload as a client compresses it (RFC 7692 7.2.1)."""
    z = zlib.compressobj(wbits=-bits)
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate_payload(data):
    return zlib.decompressobj(wbits=-15).decompress(data + b"\x00\x00\xff\xff")


def ext_header(head):
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "sec-websocket-extensions":
            return value.strip()
    return None


# ---- negotiation -----------------------------------------------------------------


def test_websockets_client_negotiates_and_echoes(srv):
    big_text = text_corpus(150 * 1024)
    random_bytes = os.urandom(100 * 1024)

    async def go():
        async with websockets.connect(url(srv), max_size=None) as ws:
            hdr = ws.response_headers["Sec-WebSocket-Extensions"]
            got = []
            for m in ["héllo ☃", b"\x00\xff" * 10, "", text_corpus(1000), big_text,
                      big_text.encode(), random_bytes]:
                await ws.send(m)
                got.append(await ws.recv() == m)
            return hdr, got

    hdr, got = run(go())
    assert hdr == BASE
    assert all(got), got


@pytest.mark.parametrize(
    "factory, want",
    [
        (dict(client_no_context_takeover=True, server_no_context_takeover=True), BASE),
        (dict(server_max_window_bits=10), BASE + "; server_max_window_bits=10"),
        (dict(server_max_window_bits=9, client_max_window_bits=9),
         BASE + "; server_max_window_bits=9"),
        # zlib cannot compress to a 256-byte window: accepted, sent plain.
        (dict(server_max_window_bits=8), BASE + "; server_max_window_bits=8"),
        (dict(client_max_window_bits=None), BASE),
    ],
    ids=["no-context-both", "server-window-10", "both-windows-9", "server-window-8",
         "no-client-window-param"],
)
def test_context_takeover_and_window_variants(srv, factory, want):
    msgs = [text_corpus(200 + 300 * i) for i in range(20)]

    async def go():
        ext = ClientPerMessageDeflateFactory(**factory)
        async with websockets.connect(url(srv), extensions=[ext], compression=None,
                                      max_size=None) as ws:
            out = []
            for m in msgs:
                await ws.send(m)
                out.append(await ws.recv())
            return ws.response_headers["Sec-WebSocket-Extensions"], out

    hdr, out = run(go())
    assert hdr == want
    assert out == msgs


def raw_deflate(server, offer, path="/echo"):
    extra = b"" if offer is None else f"Sec-WebSocket-Extensions: {offer}\r\n".encode()
    c = Raw(server, path, extra)
    head = c.head()
    assert head.startswith("HTTP/1.1 101 "), head
    return c, ext_header(head)


@pytest.mark.parametrize("offer", [
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; client_no_context_takeover=yes",
    "permessage-deflate; bogus",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "x-webkit-deflate-frame",
])
def test_bad_offers_are_declined_not_failed(srv, offer):
    c, ext = raw_deflate(srv, offer)
    assert ext is None
    c.sock.sendall(frame(0x81, b"plain"))
    assert c.frame() == (0x1, b"plain")
    # Without the extension RSV1 is a protocol error.
    c.sock.sendall(frame(0xC1, deflate_payload(b"x" * 100)))
    op, payload = c.frame()
    assert (op, close_code(payload)) == (0x8, 1002)


def test_first_acceptable_offer_wins_across_fields(srv):
    extra = ("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=20, foo\r\n"
             "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=11, "
             "permessage-deflate\r\n")
    c = Raw(srv, "/echo", extra.encode())
    assert ext_header(c.head()) == BASE + "; server_max_window_bits=11"


def test_no_offer_gets_no_extensions_header(srv):
    c, ext = raw_deflate(srv, None)
    assert ext is None


# ---- compressed frames --------------------------------------------------------------


def test_server_compresses_with_rsv1_on_the_first_frame_only(srv):
    c, ext = raw_deflate(srv, "permessage-deflate")
    assert ext == BASE
    text = text_corpus(20000).encode()
    # A compressed message in three fragments, a ping between them.
    z = deflate_payload(text)
    a, b = len(z) // 3, 2 * len(z) // 3
    c.sock.sendall(frame(0x41, z[:a]) + frame(0x00, z[a:b]) + frame(0x89, b"p")
                   + frame(0x80, z[b:]))
    b0, payload = raw_frame(c)
    assert b0 == 0x8A and payload == b"p"  # the pong first, never compressed
    b0, payload = raw_frame(c)
    assert b0 == 0xC1  # FIN, RSV1, text
    assert len(payload) < len(text) // 4
    assert inflate_payload(payload) == text
    # Short messages are sent plain (RSV1 clear): not worth compressing.
    c.sock.sendall(frame(0xC1, deflate_payload(b"tiny")))
    assert raw_frame(c) == (0x81, b"tiny")
    # An uncompressed message is fine too (RFC 7692 6: per message).
    c.sock.sendall(frame(0x82, b"\x01\x02"))
    assert raw_frame(c) == (0x82, b"\x01\x02")


def test_every_message_stands_alone(srv):
    """server_no_context_takeover: each echo inflates with a fresh inflater."""
    c, _ = raw_deflate(srv, "permessage-deflate")
    msg = text_corpus(3000).encode()
    for _ in range(5):
        c.sock.sendall(frame(0xC1, deflate_payload(msg)))
        b0, payload = raw_frame(c)
        assert b0 == 0xC1
        assert zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff") == msg


def raw_frame(c):
    b0, b1 = c.read(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(c.read(2), "big")
    elif n == 127:
        n = int.from_bytes(c.read(8), "big")
    return b0, c.read(n)


def test_zip_bomb_closes_1009(srv):
    async def go():
        async with websockets.connect(url(srv), max_size=None) as ws:
            await ws.send(b"\x00" * (64 << 20))  # ~64 KiB on the wire
            with pytest.raises(websockets.ConnectionClosedError):
                await ws.recv()
            return ws.close_code

    assert run(go()) == 1009


def test_raw_zip_bomb_closes_1009(srv):
    c, _ = raw_deflate(srv, "permessage-deflate")
    bomb = deflate_payload(b"\x00" * (16 << 20))
    assert len(bomb) < 256 * 1024  # under max_message on the wire
    c.sock.sendall(frame(0xC2, bomb))
    b0, payload = raw_frame(c)
    assert (b0 & 0x0F, close_code(payload)) == (0x8, 1009)
    assert c.eof()


def test_corrupt_deflate_data_closes_1007(srv):
    c, _ = raw_deflate(srv, "permessage-deflate")
    c.sock.sendall(frame(0xC2, b"\x07\x00\x00"))  # BTYPE 11: reserved
    b0, payload = raw_frame(c)
    assert (b0 & 0x0F, close_code(payload)) == (0x8, 1007)


def test_compressed_text_that_is_not_utf8_closes_1007(srv):
    c, _ = raw_deflate(srv, "permessage-deflate")
    c.sock.sendall(frame(0xC1, deflate_payload(b"ok \xff\xfe")))
    b0, payload = raw_frame(c)
    assert (b0 & 0x0F, close_code(payload)) == (0x8, 1007)


def test_rsv1_on_a_continuation_or_control_frame_closes_1002(srv):
    for wire in (frame(0x41, deflate_payload(b"ab")) + frame(0xC0, b"x"), frame(0xC9, b"")):
        c, _ = raw_deflate(srv, "permessage-deflate")
        c.sock.sendall(wire)
        b0, payload = raw_frame(c)
        assert (b0 & 0x0F, close_code(payload)) == (0x8, 1002)


# ---- compression: off -------------------------------------------------------------------


def test_compression_off_sends_no_extension_header(off):
    async def go():
        async with websockets.connect(url(off)) as ws:
            await ws.send(text_corpus(5000))
            echo = await ws.recv()
            return ws.response_headers.get("Sec-WebSocket-Extensions"), echo

    hdr, echo = run(go())
    assert hdr is None
    assert echo == text_corpus(5000)
    c, ext = raw_deflate(off, "permessage-deflate")
    assert ext is None


def test_compression_per_listener(serve):
    s = serve("ws_app:app", websocket={"compression": "off"},
              listener={"tcp": "127.0.0.1:0", "websocket": {"compression": "deflate"}})
    c, ext = raw_deflate(s, "permessage-deflate")
    assert ext == BASE
