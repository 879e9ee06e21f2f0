"""saltare behind a real HAProxy (Debian's haproxy package): the PROXY
protocol v1 (send-proxy), v2 (send-proxy-v2), v2 with the SSL TLV after
HAProxy terminated TLS (send-proxy-v2-ssl, send-proxy-v2-ssl-cn with the
CRC32C and authority TLVs too), and `option forwardfor` to a listener that
trusts HAProxy's X-Forwarded-For. test_proxy.py covers the parser with
hand-made headers; this file checks what a real proxy sends.

The clients connect from 127.0.0.2 (all of 127/8 is the loopback), HAProxy
reaches saltare from 127.0.0.1: a scope client of 127.0.0.2 and the client
socket's own port can only come from what HAProxy passed on."""

import json
import os
import pathlib
import shutil
import socket
import subprocess

import httpx
import pytest

from conftest import ROOT, free_port, lines_after, wait_for, wait_for_output

CLIENT_IP = "127.0.0.2"
TIMEOUT = 30.0  # seconds, for every client operation: the box may be loaded


def haproxy_bin() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None
    )


pytestmark = pytest.mark.skipif(
    haproxy_bin() is None, reason="haproxy is not installed (tools/dev.sh deps installs it)"
)

# The frontends HAProxy listens on, each to one saltare listener.
FRONTENDS = ("v1", "v2", "v2ssl", "v2sslcn", "xff", "xffssl")

CONFIG = """\
global
    maxconn 200

defaults
    mode tcp
    timeout connect 30s
    timeout client 60s
    timeout server 60s

frontend v1
    bind 127.0.0.1:{v1}
    default_backend v1
backend v1
    server saltare 127.0.0.1:{s_v1} send-proxy

frontend v2
    bind 127.0.0.1:{v2}
    default_backend v2
backend v2
    server saltare 127.0.0.1:{s_v2} send-proxy-v2

frontend v2ssl
    bind 127.0.0.1:{v2ssl} ssl crt {bundle}
    default_backend v2ssl
backend v2ssl
    server saltare 127.0.0.1:{s_v2} send-proxy-v2-ssl

frontend v2sslcn
    bind 127.0.0.1:{v2sslcn} ssl crt {bundle} ca-file {ca} verify optional
    default_backend v2sslcn
backend v2sslcn
    server saltare 127.0.0.1:{s_v2} send-proxy-v2-ssl-cn proxy-v2-options crc32c,authority

frontend xff
    mode http
    bind 127.0.0.1:{xff}
    bind 127.0.0.1:{xffssl} ssl crt {bundle}
    option forwardfor
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    default_backend xff
backend xff
    mode http
    server saltare 127.0.0.1:{s_xff}
"""


class HAProxy:
    def __init__(self, directory: pathlib.Path, backends: dict[str, int], certs: pathlib.Path):
        self.directory = directory
        self.backends = backends
        self.certs = certs
        self.proc = None
        self.ports: dict[str, int] = {}
        self.log_path = directory / "haproxy.log"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        # HAProxy cannot bind port 0 and report it: free ports, taken again
        # at once. Another process may win one in between; then HAProxy
        # exits at startup ("cannot bind socket") and we try other ports.
        for _ in range(5):
            self.ports = {name: free_port() for name in FRONTENDS}
            config = self.directory / "haproxy.cfg"
            config.write_text(CONFIG.format(
                **self.ports, **self.backends,
                bundle=self.certs / "server-bundle.pem", ca=self.certs / "ca.pem",
            ))
            check = subprocess.run([haproxy_bin(), "-c", "-f", str(config)],
                                   capture_output=True, text=True)
            assert check.returncode == 0, f"haproxy -c:\n{check.stdout}{check.stderr}"
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen([haproxy_bin(), "-db", "-f", str(config)],
                                             stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT)
            if self._wait_listening():
                return
            if "cannot bind" not in self.output():
                break
        raise AssertionError(f"haproxy did not start:\n{self.output()}")

    def _wait_listening(self) -> bool:
        def state():
            if self.proc.poll() is not None:
                return "exited"
            for port in self.ports.values():
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                except OSError:
                    return None
            return "listening"

        return wait_for(state, 30, "haproxy listening", lambda: f":\n{self.output()}") == "listening"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", str(ROOT / "tools" / "testcerts.sh"), str(d)], check=True,
                   capture_output=True)
    # HAProxy's `crt` wants the certificate and its key in one file.
    (d / "server-bundle.pem").write_bytes((d / "server.pem").read_bytes() + (d / "server.key").read_bytes())
    return d


@pytest.fixture(scope="module")
def stack(serve_module, certs, tmp_path_factory):
    """Three saltare servers (a v1 listener, a v2 listener with an access
    log, a listener trusting 127.0.0.1's forwarding headers) and one HAProxy
    in front of them."""
    d = tmp_path_factory.mktemp("haproxy")
    v1 = serve_module("scope_app:app", listener={"tcp": "127.0.0.1:0", "proxy": {"protocol": "v1"}})
    v2 = serve_module(
        "scope_app:app",
        listener={"tcp": "127.0.0.1:0", "proxy": {"protocol": "v2"}},
        log={"access": str(d / "access.log")},
    )
    v2.access_log = d / "access.log"
    xff = serve_module(
        "scope_app:app",
        listener={"tcp": "127.0.0.1:0", "proxy": {"trusted": ["127.0.0.1"], "headers": True}},
    )
    for server in (v1, v2, xff):
        server.wait_serving()
    haproxy = HAProxy(d, {"s_v1": v1.port, "s_v2": v2.port, "s_xff": xff.port}, certs)
    haproxy.start()
    haproxy.saltare = {"v1": v1, "v2": v2, "xff": xff}
    yield haproxy
    haproxy.stop()


def client(certs, **kwargs) -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(local_address=CLIENT_IP, verify=str(certs / "ca.pem"), **kwargs),
        timeout=TIMEOUT,
    )


def fetch(stack, certs, frontend, *, https=False, **kwargs):
    """GET through one frontend: (the app's scope, the client socket's own
    (address, port))."""
    scheme = "https" if https else "http"
    # "localhost": the name the test certificate carries (and the SNI the
    # authority TLV passes on).
    url = f"{scheme}://localhost:{stack.ports[frontend]}/p?q=1"
    with client(certs, **kwargs) as c:
        r = c.get(url)
        assert r.status_code == 200, r.text
        local = r.extensions["network_stream"].get_extra_info("client_addr")
        return r.json(), list(local)


@pytest.mark.parametrize("frontend", ["v1", "v2"])
def test_send_proxy_gives_the_real_client(stack, certs, frontend):
    scope, local = fetch(stack, certs, frontend)
    assert local[0] == CLIENT_IP
    assert scope["client"] == local  # the address and port HAProxy saw
    assert scope["server"] == ["127.0.0.1", stack.ports[frontend]]  # HAProxy's side
    assert scope["scheme"] == "http"
    assert scope["path"] == "/p" and scope["query_string"] == "q=1"


def test_send_proxy_v2_client_in_the_access_log(stack, certs):
    server = stack.saltare["v2"]
    mark = server.mark(server.access_log)
    scope, local = fetch(stack, certs, "v2")
    assert scope["client"] == local

    def entries():
        return [json.loads(line) for line in lines_after(server.access_log, mark) if line.startswith("{")]

    # A previous test's line may land after the mark (the worker logs after
    # it sent the response): look for this request's line.
    want = f"{CLIENT_IP}:{local[1]}"
    wait_for(lambda: any(e["client"] == want for e in entries()), 10, f"an access line for {want}",
             lambda: f": {entries()}")
    assert all(e["client"].startswith(CLIENT_IP + ":") for e in entries()), entries()


def test_keep_alive_through_haproxy_keeps_each_client(stack, certs):
    """HAProxy in TCP mode: one backend connection per client connection,
    one PROXY header each; requests kept alive on it keep that client."""
    url = f"http://localhost:{stack.ports['v2']}/"
    with client(certs) as a, client(certs) as b:
        first_a, first_b = a.get(url), b.get(url)
        again_a, again_b = a.get(url), b.get(url)
        local_a = first_a.extensions["network_stream"].get_extra_info("client_addr")
        local_b = first_b.extensions["network_stream"].get_extra_info("client_addr")
    assert local_a != local_b
    assert first_a.json()["client"] == again_a.json()["client"] == list(local_a)
    assert first_b.json()["client"] == again_b.json()["client"] == list(local_b)


def test_send_proxy_v2_ssl_makes_the_scheme_https(stack, certs):
    scope, local = fetch(stack, certs, "v2ssl", https=True)
    assert scope["scheme"] == "https"
    assert scope["client"] == local and local[0] == CLIENT_IP
    assert scope["server"] == ["127.0.0.1", stack.ports["v2ssl"]]
    # saltare itself spoke plain TCP to HAProxy: no TLS extension of its own.
    assert "tls" not in scope["extensions"]


@pytest.mark.parametrize("with_cert", [True, False], ids=["client-cert", "no-client-cert"])
def test_send_proxy_v2_ssl_cn_with_crc32c(stack, certs, with_cert):
    """send-proxy-v2-ssl-cn adds the client certificate's CN as a sub-TLV
    of the SSL TLV (when the client sent one), crc32c a checksum TLV that
    saltare verifies, authority the SNI: all parsed, the scheme https."""
    cert = {"cert": (str(certs / "client.pem"), str(certs / "client.key"))} if with_cert else {}
    scope, local = fetch(stack, certs, "v2sslcn", https=True, **cert)
    assert scope["scheme"] == "https"
    assert scope["client"] == local and local[0] == CLIENT_IP


def test_option_forwardfor_to_a_trusted_peer(stack, certs):
    scope, local = fetch(stack, certs, "xff")
    assert local[0] == CLIENT_IP
    # X-Forwarded-For carries no port: the address only.
    assert scope["client"] == [CLIENT_IP, 0]
    assert scope["scheme"] == "http"
    assert ["x-forwarded-for", CLIENT_IP] in scope["headers"]
    # HAProxy terminating TLS and saying so in X-Forwarded-Proto.
    scope, _ = fetch(stack, certs, "xffssl", https=True)
    assert scope["client"] == [CLIENT_IP, 0]
    assert scope["scheme"] == "https"


def test_option_forwardfor_ignores_what_the_client_claims(stack, certs):
    """A client's own X-Forwarded-For is kept left of what HAProxy adds;
    the right-most untrusted hop is still the real client."""
    url = f"http://localhost:{stack.ports['xff']}/"
    with client(certs) as c:
        scope = c.get(url, headers={"X-Forwarded-For": "203.0.113.66"}).json()
    assert scope["client"] == [CLIENT_IP, 0]


def test_direct_connection_without_a_header_is_closed(stack, certs):
    """The v2 listener takes nothing but HAProxy's header: a client going
    around HAProxy gets its connection closed, no response."""
    server = stack.saltare["v2"]
    mark = server.mark()
    with client(certs) as c:
        # Closed with the request unread: a reset, or an EOF if it came first.
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            c.get(f"http://127.0.0.1:{server.port}/")
    wait_for_output(
        server,
        rf"proxy: closing connection from {CLIENT_IP}:\d+ on .*: no PROXY protocol header",
        mark,
    )
    # And HAProxy's clients are still served.
    scope, local = fetch(stack, certs, "v2")
    assert scope["client"] == local

