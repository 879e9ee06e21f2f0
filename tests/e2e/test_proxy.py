"""Proxy awareness: the PROXY protocol (v1 and v2, sent by hand over raw
sockets) and forwarding headers from trusted and untrusted peers. The app
echoes its scope (scope_app), so each test sees what an app would."""

import json
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import ROOT, lines_after, read_response, wait_for, wait_for_output

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
REQUEST = b"GET /p?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n"


def v2(cmd, fam, addrs, tlvs=b""):
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack(">H", len(addrs) + len(tlvs)) + addrs + tlvs


def v2_tcp4(src, sport, dst, dport, tlvs=b""):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return v2(1, 0x11, addrs, tlvs)


def v2_tcp6(src, sport, dst, dport):
    addrs = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
             + struct.pack(">HH", sport, dport))
    return v2(1, 0x21, addrs)


def tlv(t, value):
    return bytes([t]) + struct.pack(">H", len(value)) + value


def exchange(server, data, *, extra=b""):
    """Sends `data` (a PROXY header and/or a request) and reads one response."""
    s = server.connect()
    s.sendall(data + extra)
    f = s.makefile("rb")
    status, headers, body, _ = read_response(f)
    return s, f, status, json.loads(body)


def closed_without_response(s) -> bool:
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


def access_lines(path, mark=0):
    return [json.loads(line) for line in lines_after(path, mark) if line.startswith("{")]


@pytest.fixture
def proxied(serve, tmp_path):
    """A listener that requires a PROXY header (v1 or v2), with an access log."""
    log = tmp_path / "access.log"

    def start(protocol="auto", **proxy):
        server = serve(
            "scope_app:app",
            listener={"tcp": "127.0.0.1:0", "proxy": {"protocol": protocol, **proxy}},
            log={"access": str(log)},
        )
        server.access_log = log
        return server

    return start


# ---- PROXY protocol ----------------------------------------------------------


def test_v1_header_sets_client_server_and_access_log(proxied):
    server = proxied("v1")
    header = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n"
    s, f, status, scope = exchange(server, header + REQUEST)
    assert status == 200
    assert scope["client"] == ["192.0.2.7", 56324]
    assert scope["server"] == ["198.51.100.1", 443]
    assert scope["scheme"] == "http"
    # The header is once per connection: a kept-alive request keeps its client.
    s.sendall(REQUEST)
    status, _, body, _ = read_response(f)
    assert json.loads(body)["client"] == ["192.0.2.7", 56324]
    s.close()
    wait_for(lambda: len(access_lines(server.access_log)) >= 2, 10, "two access lines")
    assert [e["client"] for e in access_lines(server.access_log)] == ["192.0.2.7:56324"] * 2


def test_v1_tcp6_and_unknown(proxied):
    server = proxied("v1")
    s, _, _, scope = exchange(server, b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 8080\r\n" + REQUEST)
    assert scope["client"] == ["2001:db8::1", 1000]
    assert scope["server"] == ["2001:db8::2", 8080]
    s.close()
    # UNKNOWN: the connection's own addresses.
    s, _, _, scope = exchange(server, b"PROXY UNKNOWN\r\n" + REQUEST)
    assert scope["client"][0] == "127.0.0.1"
    s.close()


def test_v2_tcp4_tcp6_and_local(proxied):
    server = proxied("v2")
    s, _, _, scope = exchange(server, v2_tcp4("203.0.113.9", 40000, "10.0.0.1", 8443) + REQUEST)
    assert scope["client"] == ["203.0.113.9", 40000]
    assert scope["server"] == ["10.0.0.1", 8443]
    s.close()
    s, _, _, scope = exchange(server, v2_tcp6("2001:db8::42", 5, "fd00::1", 6) + REQUEST)
    assert scope["client"] == ["2001:db8::42", 5]
    s.close()
    # LOCAL (the proxy's health check): the real peer.
    s, _, _, scope = exchange(server, v2(0, 0x00, b"") + REQUEST)
    assert scope["client"][0] == "127.0.0.1"
    s.close()


def test_v2_ssl_tlv_makes_the_scheme_https(proxied):
    server = proxied("auto")
    ssl_tlv = tlv(0x20, b"\x01\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3"))
    header = v2_tcp4("203.0.113.9", 40000, "10.0.0.1", 443, tlv(0x01, b"http/1.1") + ssl_tlv)
    s, _, _, scope = exchange(server, header + REQUEST)
    assert scope["scheme"] == "https"
    assert scope["client"] == ["203.0.113.9", 40000]
    s.close()


def test_header_in_pieces(proxied):
    """A header split over several segments is read as it comes."""
    server = proxied("auto")
    s = server.connect()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = v2_tcp4("198.51.100.77", 1234, "10.0.0.1", 80) + REQUEST
    for piece in (data[:5], data[5:14], data[14:20], data[20:]):
        s.sendall(piece)
        time.sleep(0.05)
    status, _, body, _ = read_response(s.makefile("rb"))
    assert status == 200
    assert json.loads(body)["client"] == ["198.51.100.77", 1234]
    s.close()


@pytest.mark.parametrize(
    "protocol, data, reason",
    [
        ("auto", REQUEST, "no PROXY protocol header"),
        ("v1", b"PROXY TCP4 192.0.2.7 198.51.100.1 056324 443\r\n" + REQUEST, "malformed v1 header"),
        ("v1", b"PROXY TCP4 2001:db8::1 198.51.100.1 1 443\r\n" + REQUEST, "malformed v1 header"),
        ("v1", v2_tcp4("1.2.3.4", 1, "5.6.7.8", 2) + REQUEST, "no PROXY protocol header"),
        ("v2", b"PROXY TCP4 192.0.2.7 198.51.100.1 1 443\r\n" + REQUEST, "no PROXY protocol header"),
        ("v2", v2(1, 0x12, bytes(12)) + REQUEST, "unsupported v2 address family"),
        ("v2", v2_tcp4("1.2.3.4", 1, "5.6.7.8", 2, b"\x01\x00\x09h2") + REQUEST, "malformed v2 TLV"),
    ],
)
def test_missing_or_malformed_header_closes_the_connection(proxied, protocol, data, reason):
    server = proxied(protocol)
    mark = server.mark()
    s = server.connect()
    s.sendall(data)
    assert closed_without_response(s)
    s.close()
    line = wait_for_output(server, r"proxy: closing connection from 127\.0\.0\.1:\d+ on .*: (.*)", mark)
    assert line.group(1) == reason
    # The server goes on serving proxied connections.
    good = b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n" if protocol != "v2" else v2_tcp4("192.0.2.1", 1, "192.0.2.2", 2)
    s, _, status, scope = exchange(server, good + REQUEST)
    assert status == 200 and scope["client"] == ["192.0.2.1", 1]
    s.close()


def test_eof_inside_the_header_is_counted_as_malformed(proxied):
    server = proxied("v1")
    mark = server.mark()
    s = server.connect()
    s.sendall(b"PROXY TCP4 1.2.3.4 ")
    s.shutdown(socket.SHUT_WR)
    assert closed_without_response(s)
    s.close()
    wait_for_output(server, r"proxy: closing connection .*: connection closed inside the PROXY header",
                    mark)


def test_header_timeout_applies_to_the_proxy_header(serve):
    server = serve(
        "scope_app:app",
        listener={"tcp": "127.0.0.1:0", "proxy": {"protocol": "v1"}, "timeouts": {"header": "1s"}},
    )
    mark = server.mark()
    s = server.connect()
    s.sendall(b"PROXY TCP4 1.2.3.4")  # and nothing more
    t0 = time.monotonic()
    assert closed_without_response(s)
    assert time.monotonic() - t0 < 8
    s.close()
    wait_for_output(server, r"proxy: closing connection .*: no PROXY header within timeouts\.header", mark)


def test_other_listeners_need_no_header(serve, tmp_path):
    """proxy.protocol is per listener: a plain listener next to it is untouched."""
    from conftest import free_port

    plain, proxied_port = free_port(), free_port()
    server = serve(
        "scope_app:app",
        listener={"tcp": f"127.0.0.1:{plain}"},
        **{"listeners": [
            {"tcp": f"127.0.0.1:{plain}"},
            {"tcp": f"127.0.0.1:{proxied_port}", "proxy": {"protocol": "v1"}},
        ]},
    )
    s, _, status, scope = exchange(server, REQUEST)
    assert status == 200 and scope["client"][0] == "127.0.0.1"
    s.close()
    s = socket.create_connection(("127.0.0.1", proxied_port))
    s.settimeout(10)
    s.sendall(b"PROXY TCP4 192.0.2.9 192.0.2.2 7 8\r\n" + REQUEST)
    status, _, body, _ = read_response(s.makefile("rb"))
    assert json.loads(body)["client"] == ["192.0.2.9", 7]
    s.close()


def test_v2_before_tls_handshake(serve, tmp_path):
    """The PROXY header precedes the TLS ClientHello (HAProxy send-proxy-v2
    to a TLS backend): the handshake starts after it."""
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(["sh", str(ROOT / "tools" / "testcerts.sh"), str(certs)], check=True,
                   capture_output=True)
    log = tmp_path / "access.log"
    server = serve(
        "scope_app:app",
        listener={"tcp": "127.0.0.1:0", "proxy": {"protocol": "v2"},
                  "tls": {"cert": str(certs / "server.pem"), "key": str(certs / "server.key")}},
        log={"access": str(log)},
    )
    raw = server.connect()
    raw.sendall(v2_tcp4("203.0.113.50", 999, "10.0.0.1", 443))
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(REQUEST)
    status, _, body, _ = read_response(s.makefile("rb"))
    scope = json.loads(body)
    assert status == 200
    assert scope["client"] == ["203.0.113.50", 999]
    assert scope["scheme"] == "https"
    assert "tls" in scope["extensions"]
    s.close()
    wait_for(lambda: access_lines(log), 10, "an access line")
    (entry,) = access_lines(log)
    assert entry["client"] == "203.0.113.50:999"
    assert entry["tls"] in ("TLSv1.2", "TLSv1.3")


# ---- forwarding headers ------------------------------------------------------


def get(server, *headers):
    req = b"GET / HTTP/1.1\r\nHost: example.test\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
    s, _, status, scope = exchange(server, req)
    s.close()
    assert status == 200
    return scope


def test_trusted_peer_x_forwarded_headers(serve, tmp_path):
    log = tmp_path / "access.log"
    server = serve(
        "scope_app:app",
        proxy={"trusted": ["127.0.0.0/8", "10.0.0.0/8"], "headers": True},
        log={"access": str(log)},
    )
    scope = get(
        server,
        b"X-Forwarded-For: 6.6.6.6, 203.0.113.5, 10.0.0.3",
        b"X-Forwarded-Proto: https",
        b"X-Forwarded-Host: shop.example:8443",
    )
    # The client may write anything left of what our proxies appended.
    assert scope["client"] == ["203.0.113.5", 0]
    assert scope["scheme"] == "https"
    assert scope["server"] == ["shop.example", 8443]
    # The app still sees the headers as sent.
    names = [k for k, _ in scope["headers"]]
    assert "x-forwarded-for" in names and "x-forwarded-proto" in names
    wait_for(lambda: access_lines(log), 10, "an access line")
    assert access_lines(log)[0]["client"] == "203.0.113.5:0"


def test_trusted_peer_forwarded_and_x_real_ip(serve):
    server = serve("scope_app:app", proxy={"trusted": ["127.0.0.1"], "headers": True})
    scope = get(server, b'Forwarded: for="[2001:db8::7]:4711";proto=https;host=api.example')
    assert scope["client"] == ["2001:db8::7", 4711]
    assert scope["scheme"] == "https"
    assert scope["server"] == ["api.example", 443]
    # Forwarded wins over X-Forwarded-For when both came.
    scope = get(server, b"X-Forwarded-For: 1.1.1.1", b"Forwarded: for=2.2.2.2")
    assert scope["client"] == ["2.2.2.2", 0]
    scope = get(server, b"X-Real-IP: 198.51.100.2")
    assert scope["client"] == ["198.51.100.2", 0]


@pytest.mark.parametrize(
    "headers",
    [
        [b"X-Forwarded-For: 203.0.113.5"],
        [b"X-Forwarded-Proto: https", b"X-Forwarded-Host: evil.example"],
        [b"Forwarded: for=203.0.113.5;proto=https;host=evil.example"],
        [b"X-Real-IP: 203.0.113.5"],
    ],
)
def test_untrusted_peer_headers_are_ignored(serve, headers):
    server = serve("scope_app:app", proxy={"trusted": ["10.0.0.0/8"], "headers": True})
    scope = get(server, *headers)
    assert scope["client"][0] == "127.0.0.1" and scope["client"][1] > 0
    assert scope["scheme"] == "http"
    assert scope["server"][0] == "127.0.0.1"
    sent = {h.split(b":")[0].decode().lower() for h in headers}
    assert sent <= {k for k, _ in scope["headers"]}  # passed to the app untouched


def test_headers_off_ignores_even_trusted_peers(serve):
    server = serve("scope_app:app", proxy={"trusted": ["127.0.0.1"], "headers": False})
    scope = get(server, b"X-Forwarded-For: 203.0.113.5", b"X-Forwarded-Proto: https")
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"


def test_spoofed_forwarded_for_through_a_trusted_hop(serve):
    """All hops trusted but the left-most: it is the client, whatever it says."""
    server = serve("scope_app:app", proxy={"trusted": ["127.0.0.1", "10.0.0.0/8"], "headers": True})
    scope = get(server, b"X-Forwarded-For: 127.0.0.1, 10.9.9.9")
    assert scope["client"] == ["127.0.0.1", 0]
    # Garbage right of the first untrusted hop: nothing is believed.
    scope = get(server, b"X-Forwarded-For: 203.0.113.5, junk, 10.0.0.3")
    assert scope["client"][1] != 0


def test_proxy_header_source_is_what_trust_is_judged_on(proxied):
    """PROXY then headers: the PROXY source replaces the peer, and only a
    trusted source's X-Forwarded-For is believed."""
    server = proxied("v1", trusted=["10.0.0.0/8"], headers=True)
    trusted = b"PROXY TCP4 10.1.2.3 10.0.0.1 5000 80\r\n"
    req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.8\r\n\r\n"
    s, _, _, scope = exchange(server, trusted + req)
    assert scope["client"] == ["203.0.113.8", 0]
    s.close()
    untrusted = b"PROXY TCP4 198.51.100.4 10.0.0.1 5000 80\r\n"
    s, _, _, scope = exchange(server, untrusted + req)
    assert scope["client"] == ["198.51.100.4", 5000]
    s.close()


def test_unix_peer_trusted_by_unix(serve, tmp_path):
    path = str(tmp_path / "p.sock")
    server = serve(
        "scope_app:app",
        listener={"unix": path, "proxy": {"trusted": ["unix"], "headers": True}},
    )
    scope = get(server, b"X-Forwarded-For: 203.0.113.5", b"X-Forwarded-Proto: https")
    assert scope["client"] == ["203.0.113.5", 0]
    assert scope["scheme"] == "https"
