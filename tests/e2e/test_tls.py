"""TLS and mTLS listeners, driven by Python's ssl module and httpx, with
certificates made at run time by tools/testcerts.sh (openssl CLI)."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import httpx
import pytest

from conftest import ROOT, START_TIMEOUT, free_port, wait_for_output

CERTS_SCRIPT = ROOT / "tools" / "testcerts.sh"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", str(CERTS_SCRIPT), str(d)], check=True)
    return d


def tls_listener(certs, port, **tls):
    conf = {"cert": str(certs / "server.pem"), "key": str(certs / "server.key")}
    conf.update(tls)
    return {"tcp": f"127.0.0.1:{port}", "tls": conf}


def client_ctx(certs, cert=None, **kw):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(certs / f"{cert}.pem"), str(certs / f"{cert}.key"))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def request(port, ctx, server_hostname="localhost", session=None, path="/"):
    """One GET over a fresh TLS connection: (ssl socket facts, status, json)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=server_hostname, session=session)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        if b"chunked" in head.lower():
            size, _, rest = body.partition(b"\r\n")
            body = rest[: int(size, 16)]
        facts = {
            "version": s.version(),
            "alpn": s.selected_alpn_protocol(),
            "cert": s.getpeercert(),
            "session": s.session,
            "reused": s.session_reused,
        }
        return facts, status, json.loads(body) if body else None
    finally:
        s.close()


@pytest.fixture(scope="module")
def tls_server(serve_module, certs):
    port = free_port()
    listener = tls_listener(
        certs,
        port,
        sni=[{"names": ["api.test", "*.wild.test"], "cert": str(certs / "sni.pem"),
              "key": str(certs / "sni.key")}],
    )
    server = serve_module("listen_app:app", listener=listener)
    return server, port


def test_https_with_httpx_verifying_the_ca(tls_server, certs):
    _, port = tls_server
    r = httpx.get(f"https://localhost:{port}/", verify=str(certs / "ca.pem"), timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["scheme"] == "https"
    tls = body["tls"]
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    assert tls["server_cert"] == (certs / "server.pem").read_text()
    assert isinstance(tls["cipher_suite"], int) and tls["cipher_suite"] > 0


def test_alpn_http11(tls_server, certs):
    _, port = tls_server
    ctx = client_ctx(certs)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    facts, status, _ = request(port, ctx)
    assert status == 200
    assert facts["alpn"] == "http/1.1"
    ctx = client_ctx(certs)
    ctx.set_alpn_protocols(["h2"])  # nothing in common: no_application_protocol
    with pytest.raises(ssl.SSLError, match="no application protocol"):
        request(port, ctx)


@pytest.mark.parametrize(
    "name,cn", [("api.test", "api.test"), ("x.wild.test", "api.test"), ("localhost", "localhost")]
)
def test_sni_picks_the_certificate(tls_server, certs, name, cn):
    _, port = tls_server
    facts, status, body = request(port, client_ctx(certs), server_hostname=name)
    assert status == 200
    subject = dict(x[0] for x in facts["cert"]["subject"])
    assert subject["commonName"] == cn
    pem = (certs / ("sni.pem" if cn == "api.test" else "server.pem")).read_text()
    assert body["tls"]["server_cert"] == pem


def test_wildcard_covers_exactly_one_label(tls_server, certs):
    _, port = tls_server
    with pytest.raises(ssl.SSLCertVerificationError):  # default cert: name mismatch
        request(port, client_ctx(certs), server_hostname="a.b.wild.test")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_1_1_refused(tls_server, certs):
    _, port = tls_server
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(certs / "ca.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        request(port, ctx)


def test_session_resumption_across_connections(tls_server, certs):
    _, port = tls_server
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(certs)
        ctx.maximum_version = version
        first, _, _ = request(port, ctx)
        assert not first["reused"]
        second, status, _ = request(port, ctx, session=first["session"])
        assert status == 200
        assert second["reused"], version


def test_a_resumed_tls13_session_gets_a_fresh_ticket(tls_server, certs):
    """RFC 8446 C.4: a client should use a ticket once, so a resumption
    brings a new one (a Python client names a session by its ticket's
    hash). Sent right after the client's Finished, it also spares clients
    with Nagle on a delayed-ACK wait before their request goes out."""
    _, port = tls_server
    ctx = client_ctx(certs, minimum_version=ssl.TLSVersion.TLSv1_3)
    first, status, _ = request(port, ctx)
    assert status == 200 and not first["reused"]
    again, status, _ = request(port, ctx, session=first["session"])
    assert status == 200 and again["reused"]
    assert again["session"].id != first["session"].id
    third, status, _ = request(port, ctx, session=again["session"])
    assert status == 200 and third["reused"]


def test_plain_http_to_tls_port_is_closed(tls_server, certs):
    server, port = tls_server
    mark = server.mark()  # earlier tests of the module logged failed handshakes too
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert s.recv(100) == b""  # closed without an answer
    except ConnectionResetError:
        pass  # closed with the request unread: the kernel resets
    s.close()
    wait_for_output(server, r"tls handshake 127\.0\.0\.1:", mark)
    assert request(port, client_ctx(certs))[1] == 200  # others unaffected


def test_keep_alive_over_tls(tls_server, certs):
    _, port = tls_server
    with httpx.Client(verify=str(certs / "ca.pem"), timeout=10) as c:
        for _ in range(5):
            r = c.get(f"https://localhost:{port}/")
            assert r.status_code == 200


def test_plain_and_tls_listeners_in_one_process(certs, tmp_path):
    tls_port, plain_port = free_port(), free_port()
    cfg = tmp_path / "two.yaml"
    from conftest import APPS, BIN

    cfg.write_text(json.dumps({
        "app": {"target": "listen_app:app", "path": [str(APPS)]},
        "listeners": [tls_listener(certs, tls_port), {"tcp": f"127.0.0.1:{plain_port}"}],
    }))
    proc = subprocess.Popen([BIN, "-c", str(cfg)], stderr=subprocess.PIPE)
    try:
        import time

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{plain_port}/", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        assert r.json()["scheme"] == "http" and r.json()["tls"] is None
        r = httpx.get(f"https://localhost:{tls_port}/", verify=str(certs / "ca.pem"), timeout=5)
        assert r.json()["scheme"] == "https"
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


# ---- mTLS ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtls(serve_module, certs):
    ports = {}
    for mode in ("required", "optional"):
        port = free_port()
        serve_module(
            "listen_app:app",
            listener=tls_listener(
                certs, port, client_ca=str(certs / "ca.pem"), verify_client=mode,
                crl=str(certs / "crl.pem"),
            ),
        )
        ports[mode] = port
    return ports


def test_mtls_required_valid_cert(mtls, certs):
    facts, status, body = request(mtls["required"], client_ctx(certs, "client"))
    assert status == 200
    tls = body["tls"]
    assert tls["client_cert_name"] == "O=saltare tests,CN=alice"
    assert tls["client_cert_error"] is None
    assert tls["client_cert_chain"][0] == (certs / "client.pem").read_text()


def test_client_cert_chain_is_a_sequence_of_pem_strings(serve, certs):
    """client_cert_chain is encoded when first read (a lazy sequence): the
    whole sequence protocol gives the PEM strings, leaf first, also when
    read from a later request after its connection has closed."""
    port = free_port()
    serve("listen_app:app", listener=tls_listener(
        certs, port, client_ca=str(certs / "ca.pem"), verify_client="required"))
    leaf = (certs / "deep-leaf.pem").read_text()
    inter = (certs / "inter.pem").read_text()
    _, status, body = request(port, client_ctx(certs, "deep"), path="/chain")
    assert status == 200
    assert body["chain"] == {
        "type": "CertChain", "len": 2, "bool": True, "sequence": True,
        "first": leaf, "last": inter, "slice": [inter], "contains": True,
        "index": 0, "count": 1, "eq_list": True, "eq_tuple": True, "ne_other": True,
        "items": [leaf, inter],
    }
    _, status, _ = request(port, client_ctx(certs, "deep"), path="/keep")
    assert status == 200
    _, status, body = request(port, client_ctx(certs, "client"), path="/kept")
    assert status == 200
    assert body["chain"]["items"] == [leaf, inter]
    assert body["chain"]["len"] == 2


@pytest.mark.parametrize("cert", [None, "untrusted", "revoked"])
def test_mtls_required_refuses(mtls, certs, cert):
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        request(mtls["required"], client_ctx(certs, cert))


def test_mtls_optional_without_cert(mtls, certs):
    facts, status, body = request(mtls["optional"], client_ctx(certs))
    assert status == 200
    assert body["tls"]["client_cert_chain"] == []
    assert body["tls"]["client_cert_name"] is None


def test_mtls_optional_with_cert(mtls, certs):
    _, status, body = request(mtls["optional"], client_ctx(certs, "client"))
    assert status == 200
    assert body["tls"]["client_cert_name"] == "O=saltare tests,CN=alice"


def test_check_reports_tls_errors_with_positions(certs, tmp_path):
    from conftest import BIN

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "app: {target: listen_app:app}\n"
        "listeners:\n"
        "  - tcp: 127.0.0.1:0\n"
        "    tls:\n"
        f"      cert: {certs / 'server.pem'}\n"
        f"      key: {certs / 'client.key'}\n"
        "      ciphers: NOT-A-CIPHER\n"
        f"      client_ca: {certs / 'client.key'}\n"
        "      verify_client: required\n"
        "      sni:\n"
        f"        - {{names: [a.test], cert: {certs / 'sni.key'}, key: {certs / 'sni.key'}}}\n"
    )
    r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 78, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == (
        f"{cfg}:6:12: listeners.0.tls.key: {certs / 'client.key'}: "
        "error:05800074:x509 certificate routines::key values mismatch"
    )
    assert lines[1].startswith(f"{cfg}:7:16: listeners.0.tls.ciphers: NOT-A-CIPHER: error:")
    assert lines[2].startswith(f"{cfg}:8:18: listeners.0.tls.client_ca: {certs / 'client.key'}: ")
    assert lines[3].startswith(f"{cfg}:11:35: listeners.0.tls.sni.0.cert: {certs / 'sni.key'}: ")
    assert len(lines) == 4, r.stderr


def test_check_accepts_good_tls_and_warns_of_expiry(certs, tmp_path):
    from conftest import BIN

    subprocess.run(
        ["openssl", "req", "-x509", "-new", "-key", str(certs / "server.key"), "-days", "3",
         "-subj", "/CN=soon", "-out", str(tmp_path / "soon.pem")],
        check=True, capture_output=True,
    )
    cfg = tmp_path / "good.yaml"
    cfg.write_text(json.dumps({
        "app": {"target": "listen_app:app"},
        "listeners": [tls_listener(certs, 1, client_ca=str(certs / "ca.pem"),
                                   verify_client="optional", crl=str(certs / "crl.pem"),
                                   cert=str(tmp_path / "soon.pem"))],
    }))
    r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"
    assert f"{tmp_path / 'soon.pem'}: certificate expires within 14 days" in r.stderr



def kernel_tls_loaded():
    try:
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            return "tls" in f.read().split()
    except OSError:
        return False


def test_ktls_is_reported_and_served_with_or_without_the_kernel_module(serve, certs, tmp_path):
    """`ktls: true` never stops a listener: without the kernel's `tls`
    module (this test VM) OpenSSL keeps its own records. -t and startup
    say which case applies; each connection's outcome is a debug line."""
    from conftest import BIN

    port = free_port()
    listener = tls_listener(certs, port, ktls=True)
    cfg = tmp_path / "ktls.yaml"
    cfg.write_text(json.dumps({"app": {"target": "listen_app:app"}, "listeners": [listener]}))
    r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"
    said = ("kernel TLS available" if kernel_tls_loaded()
            else "the kernel's `tls` module is not loaded")
    assert f"listeners.0.tls.ktls: {said}" in r.stderr

    server = serve("listen_app:app", listener=listener, log={"level": "debug"})
    for _ in range(2):
        facts, status, body = request(port, client_ctx(certs))
        assert status == 200 and body["scheme"] == "https"
    with httpx.Client(verify=str(certs / "ca.pem")) as c:  # keep-alive
        for _ in range(3):
            assert c.get(f"https://localhost:{port}/").status_code == 200
    log = server.stderr()
    assert f"listeners.0.tls.ktls: {said}" in log
    assert "tls ktls fd " in log
    if not kernel_tls_loaded():
        assert "send openssl, receive openssl" in log


def test_files_route_on_a_ktls_listener_sends_the_whole_file(serve, certs, tmp_path):
    """A `files` body on a `ktls: true` listener: SSL_sendfile when the
    kernel makes the records, else (this VM: no `tls` module) read and
    SSL_write; either way every byte arrives, ranges included, on a
    kept-alive connection."""
    site = tmp_path / "site"
    site.mkdir()
    data = os.urandom(3 << 20)  # several pump rounds and 16 KiB records
    (site / "big.bin").write_bytes(data)
    port = free_port()
    serve("listen_app:app", listener=tls_listener(certs, port, ktls=True),
          routes=[{"path": "/s/*", "files": {"root": str(site)}}])
    with httpx.Client(verify=str(certs / "ca.pem")) as c:
        for _ in range(2):
            r = c.get(f"https://localhost:{port}/s/big.bin")
            assert r.status_code == 200 and r.content == data
        r = c.get(f"https://localhost:{port}/s/big.bin", headers={"range": "bytes=70000-"})
        assert r.status_code == 206 and r.content == data[70000:]


# ---- byte-level behaviour ------------------------------------------------------


class BioTLS:
    """A TLS client over memory BIOs on a plain socket: the test decides
    when and how its bytes go out (`send`, default sendall)."""

    def __init__(self, ctx, sock, send=None):
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.sock = sock
        self.send = send or sock.sendall

    def flush(self):
        self.send(self.out.read())

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                return
            except ssl.SSLWantReadError:
                self.flush()
                data = self.sock.recv(65536)
                assert data, "closed during the handshake"
                self.inc.write(data)

    def read_all(self) -> bytes:
        """Everything until close_notify or the end of the stream."""
        body = b""
        while True:
            try:
                data = self.obj.read(65536)
                if not data:  # close_notify
                    return body
                body += data
            except ssl.SSLWantReadError:
                data = self.sock.recv(65536)
                if not data:
                    return body
                self.inc.write(data)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return body


def slow_tls_get(port, certs, chunk=1):
    """A TLS GET whose every byte (handshake and request) is its own send."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(data):
        for i in range(0, len(data), chunk):
            sock.sendall(data[i : i + chunk])
            time.sleep(0.0005)

    c = BioTLS(client_ctx(certs), sock, send)
    c.handshake()
    c.flush()
    c.obj.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    c.flush()
    body = c.read_all()
    sock.close()
    return body


def test_tls_bytes_split_at_every_boundary(tls_server, certs):
    _, port = tls_server
    body = slow_tls_get(port, certs)
    assert body.startswith(b"HTTP/1.1 200 "), body[:100]
    assert b'"scheme": "https"' in body


def batched_tls_gets(port, certs, n, path="/"):
    """n pipelined GETs whose records all reach the server in one segment
    together with the client's Finished: the server's first read after the
    handshake finds them already buffered, with no edge to come."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    c = BioTLS(client_ctx(certs), sock)
    c.handshake()
    for i in range(n):  # one record each, held back with the Finished
        last = b"Connection: close\r\n" if i == n - 1 else b""
        c.obj.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + last + b"\r\n")
    c.flush()
    data = c.read_all()
    sock.close()
    return data


@pytest.mark.parametrize("n,path", [(3, "/"), (40, "/" + "p" * 300)])
def test_records_buffered_with_the_finished_are_all_answered(tls_server, certs, n, path):
    _, port = tls_server
    data = batched_tls_gets(port, certs, n, path)
    # the second case is ~13 KiB of requests: more than one read buffer
    assert data.count(b"HTTP/1.1 200 ") == n, data[-300:]


def test_a_handshake_flight_the_socket_cannot_take_resumes_on_writability(serve, certs, tmp_path):
    # A certificate of ~85 KiB (a long subjectAltName; clients take up to
    # 100 KiB) and a client that advertises a small MSS (the server's send
    # buffer is sized from it) and a tiny window, and reads nothing for a
    # while: the server's first flight overflows its send buffer, the
    # handshake waits for EPOLLOUT (which the connection has in its mask
    # only from then on) and must finish once the client reads.
    names = ",".join(f"DNS:host{i:05d}.big.test" for i in range(3700))
    big = tmp_path / "big.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-new", "-key", str(certs / "server.key"), "-days", "30",
         "-subj", "/CN=localhost", "-addext", f"subjectAltName=DNS:localhost,{names}",
         "-out", str(big)],
        check=True, capture_output=True,
    )
    port = free_port()
    server = serve("listen_app:app", listener=tls_listener(certs, port, cert=str(big)))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connect: the window
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    sock.settimeout(15)
    sock.connect(("127.0.0.1", port))
    c = BioTLS(ctx, sock)
    with pytest.raises(ssl.SSLWantReadError):
        c.obj.do_handshake()
    c.flush()  # the ClientHello; then nothing is read for a while
    time.sleep(1)
    c.handshake()
    c.obj.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    c.flush()
    body = c.read_all()
    sock.close()
    assert body.startswith(b"HTTP/1.1 200 "), body[:200]
    assert "tls handshake" not in server.stderr()  # no failure, no timeout


def partial_client_hello(certs):
    """The first half of a real ClientHello: a handshake that stalls."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(certs).wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    return hello[: len(hello) // 2]


def test_stalled_handshake_is_reaped_at_the_handshake_timeout(serve, certs):
    port = free_port()
    listener = tls_listener(certs, port)
    listener["timeouts"] = {"handshake": "1s", "header": "30s"}
    server = serve("listen_app:app", listener=listener)
    sock = socket.create_connection(("127.0.0.1", port), timeout=25)
    sock.sendall(partial_client_hello(certs))  # then nothing more
    start = time.monotonic()
    try:
        assert sock.recv(100) == b""
    except ConnectionResetError:
        pass
    # timeouts.handshake (1 s), not timeouts.header (30 s), closed it
    assert time.monotonic() - start < 15
    sock.close()
    assert request(port, client_ctx(certs))[1] == 200
    server.wait_log("tls handshake 127.0.0.1:")
    server.wait_log("not done within timeouts.handshake")


def test_handshake_timeout_starts_after_a_proxy_header(serve, certs):
    port = free_port()
    listener = tls_listener(certs, port)
    listener["proxy"] = {"protocol": "v1"}
    listener["timeouts"] = {"handshake": "1s", "header": "30s"}
    server = serve("listen_app:app", listener=listener)
    sock = socket.create_connection(("127.0.0.1", port), timeout=25)
    sock.sendall(b"PROXY TCP4 203.0.113.50 10.0.0.1 999 443\r\n" + partial_client_hello(certs))
    start = time.monotonic()
    try:
        assert sock.recv(100) == b""
    except ConnectionResetError:
        pass
    assert time.monotonic() - start < 15
    sock.close()
    server.wait_log("tls handshake 203.0.113.50:999: not done within timeouts.handshake")


def test_header_timeout_starts_when_the_handshake_is_done(serve, certs):
    """A completed handshake disarms timeouts.handshake: the request may
    come later than it, within timeouts.header."""
    port = free_port()
    listener = tls_listener(certs, port)
    listener["timeouts"] = {"handshake": "1s", "header": "30s"}
    serve("listen_app:app", listener=listener)
    raw = socket.create_connection(("127.0.0.1", port), timeout=25)
    with client_ctx(certs).wrap_socket(raw, server_hostname="localhost") as s:
        time.sleep(3)  # three handshake timeouts
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:100]


def test_tickets_resume_on_any_worker(serve, certs):
    port = free_port()
    serve("listen_app:app", listener=tls_listener(certs, port, session_cache=0), workers=2)
    ctx = client_ctx(certs)
    first, _, body = request(port, ctx)
    pids, session = {body["pid"]}, first["session"]
    for _ in range(200):  # until another worker accepted one
        facts, status, body = request(port, ctx, session=session)
        assert status == 200
        assert facts["reused"], f"not resumed on worker {body['pid']}"
        session = facts["session"]
        pids.add(body["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2, "one worker accepted every connection"


def test_large_download_to_a_slow_reader(serve, certs):
    """Backpressure through TLS: SSL_write meets a full socket (WANT_WRITE)
    and the output queue retries; every byte arrives in order."""
    port = free_port()
    serve("stream_app:app", listener=tls_listener(certs, port))
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(20)
    raw.connect(("127.0.0.1", port))
    s = client_ctx(certs).wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"GET /?8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, reads = bytearray(), 0
    while chunk := s.recv(8192):
        data += chunk
        reads += 1
        if reads % 64 == 0:
            time.sleep(0.01)  # a slow reader: the server's socket fills
    s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == 8 << 20 and body == b"x" * (8 << 20)


def test_large_upload_over_tls(serve, certs):
    port = free_port()
    serve("body_app:app", listener=tls_listener(certs, port, client_ca=None),
          limits={"max_body": "64MiB"})
    import hashlib

    payload = os.urandom(6 << 20)
    r = httpx.post(f"https://localhost:{port}/", content=payload,
                   verify=str(certs / "ca.pem"), timeout=30)
    assert r.status_code == 200
    assert r.json()["length"] == len(payload)
    assert r.json()["md5"] == hashlib.md5(payload).hexdigest()


def test_client_vanishing_mid_response_does_not_kill_the_server(serve, certs):
    """OpenSSL's socket BIO writes with write(2); a reset peer must give
    EPIPE, not a process-killing SIGPIPE."""
    import struct

    port = free_port()
    server = serve("stream_app:app", listener=tls_listener(certs, port))
    for linger in (False, True, False, True):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        s = client_ctx(certs).wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"GET /?8 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
        if linger:  # RST at once; else FIN, and RSTs answer the next writes
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        time.sleep(0.2)
    assert server.proc.poll() is None, server.stderr()
    r = httpx.get(f"https://localhost:{port}/?1", verify=str(certs / "ca.pem"), timeout=10)
    assert r.status_code == 200 and len(r.content) == 1 << 20


@pytest.mark.skipif(shutil.which("testssl") is None, reason="testssl.sh not installed")
def test_testssl_finds_nothing_medium_or_worse(serve, certs, tmp_path):
    """testssl.sh (Debian) against the default TLS settings: protocols,
    cipher categories, forward secrecy, vulnerabilities. Findings about the
    test certificate itself (a private CA, no OCSP/CRL URI) are not the
    server's and are left out."""
    port = free_port()
    serve("listen_app:app", listener=tls_listener(certs, port))
    out = tmp_path / "testssl.json"
    subprocess.run(
        ["testssl", "--quiet", "--color", "0", "-p", "-s", "-f", "-U", "--jsonfile", str(out),
         f"127.0.0.1:{port}"],
        capture_output=True, timeout=600,
    )
    findings = json.loads(out.read_text())
    assert any(f["id"] == "TLS1_3" for f in findings), findings
    bad = [
        (f["id"], f["severity"], f["finding"])
        for f in findings
        if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL", "LOW") and not f["id"].startswith("cert")
    ]
    assert bad == []


def test_rsa_and_ecdsa_certificates_side_by_side(serve, certs):
    port = free_port()
    listener = tls_listener(
        certs, port,
        extra_certs=[{"cert": str(certs / "server-rsa.pem"), "key": str(certs / "server-rsa.key")}],
    )
    serve("listen_app:app", listener=listener)
    seen = {}
    for kind, suite in (("ecdsa", "ECDHE-ECDSA-AES128-GCM-SHA256"),
                        ("rsa", "ECDHE-RSA-AES128-GCM-SHA256")):
        ctx = client_ctx(certs, maximum_version=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(suite)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            seen[kind] = (s.cipher()[0], ssl.DER_cert_to_PEM_cert(s.getpeercert(True)))
    assert seen["ecdsa"][0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert seen["rsa"][0] == "ECDHE-RSA-AES128-GCM-SHA256"
    assert seen["ecdsa"][1] == (certs / "server.pem").read_text()
    assert seen["rsa"][1] == (certs / "server-rsa.pem").read_text()
    facts, status, _ = request(port, client_ctx(certs))  # and TLS 1.3 clients
    assert status == 200 and facts["version"] == "TLSv1.3"


def test_min_version_1_3_refuses_tls_1_2(serve, certs):
    port = free_port()
    listener = tls_listener(certs, port, min_version="1.3")
    listener["name"] = "strict"
    server = serve("listen_app:app", listener=listener)
    facts, status, _ = request(port, client_ctx(certs))
    assert status == 200 and facts["version"] == "TLSv1.3"
    # The master says "serving" once every worker is ready: the workers
    # may serve a moment before that line is out.
    server.wait_log(f"on https://127.0.0.1:{port} (strict)")
    with pytest.raises(ssl.SSLError):
        request(port, client_ctx(certs, maximum_version=ssl.TLSVersion.TLSv1_2))


def test_a_ticket_from_a_plain_tls_listener_does_not_skip_mtls(serve, certs, tmp_path):
    """Ticket keys are shared by every listener of the process; the session
    context must not be, or a session made where no client certificate was
    asked for would resume on a listener that requires one."""
    open_port, mtls_port = free_port(), free_port()
    plain = tls_listener(certs, open_port)
    # serve() returns once a worker serves: a handshake before that would
    # wait in the accept queue for the app's import (seconds under ASan).
    serve("listen_app:app", listener=plain, listeners=[
        plain,
        tls_listener(certs, mtls_port, client_ca=str(certs / "ca.pem"), verify_client="required"),
    ])
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(certs, maximum_version=version)
        first, status, _ = request(open_port, ctx)
        assert status == 200
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            request(mtls_port, ctx, session=first["session"])


@pytest.mark.parametrize("depth,ok", [(0, False), (1, True)])
def test_verify_depth_counts_intermediate_cas(serve, certs, depth, ok):
    port = free_port()
    serve("listen_app:app", listener=tls_listener(
        certs, port, client_ca=str(certs / "ca.pem"), verify_client="required",
        verify_depth=depth))
    ctx = client_ctx(certs, "deep")  # leaf + one intermediate under the CA
    if not ok:
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            request(port, ctx)
        return
    _, status, body = request(port, ctx)
    assert status == 200
    chain = body["tls"]["client_cert_chain"]
    assert body["tls"]["client_cert_name"] == "CN=dave"
    assert chain == [(certs / "deep-leaf.pem").read_text(), (certs / "inter.pem").read_text()]


def test_handshake_failures_are_counted_by_reason(serve, certs, tmp_path):
    from conftest import wait_for
    from test_metrics import metrics_socket, parse, scrape, value

    port = free_port()
    sock, metrics = metrics_socket(tmp_path)
    serve("listen_app:app", listener=metrics, listeners=[  # readiness probed on the socket
        {**tls_listener(certs, port, client_ca=str(certs / "ca.pem"), verify_client="required",
                        crl=str(certs / "crl.pem"), min_version="1.3"), "name": "edge"},
        metrics,
    ])

    def refused(ctx):
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            request(port, ctx)

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # plain HTTP
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            s.recv(100)
        except ConnectionResetError:
            pass
    refused(client_ctx(certs, "client", maximum_version=ssl.TLSVersion.TLSv1_2))  # protocol
    refused(client_ctx(certs))  # no client certificate
    refused(client_ctx(certs, "untrusted"))  # a client certificate from another CA
    refused(client_ctx(certs, "revoked"))  # a revoked one
    blind = ssl.create_default_context(cafile=str(certs / "other.pem"))
    blind.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
    refused(blind)  # the client does not trust our certificate: its alert
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # hello, then gone
        s.sendall(partial_client_hello(certs))
    assert request(port, client_ctx(certs, "client"))[1] == 200

    want = {"not_tls": 1, "protocol": 1, "client_cert": 3, "server_cert": 1, "closed": 1,
            "error": 0, "timeout": 0}

    def counted():
        m = parse(scrape(sock).text)
        got = {r: value(m, "saltare_tls_handshake_failures_total", listener="edge", reason=r)
               for r in want}
        return got == want and value(m, "saltare_tls_handshakes_total", listener="edge") == 1

    wait_for(counted, 15, "every failure counted by its reason",
             lambda: f":\n{[l for l in scrape(sock).text.splitlines() if 'tls_' in l]}")
