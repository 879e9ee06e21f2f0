"""The `metrics` route: the whole instance (every worker) summed from the
shared registry, in the Prometheus text format (checked by promtool) and
OpenMetrics (checked by the prometheus_client parser), and exact values
after a known mix of requests."""

import re
import socket
import shutil
import subprocess
import threading
import time

import httpx
import pytest

from conftest import free_port, lines_after, read_response, wait_for

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def parse(text):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in out, f"duplicate series: {line!r}"
        out[key] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(sock, accept=None):
    headers = {"accept": accept} if accept else {}
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as c:
        r = c.get("http://localhost/metrics", headers=headers)
    assert r.status_code == 200, r.text
    return r


def metrics_socket(tmp_path):
    """The Unix socket every test scrapes, and its listener: only the
    metrics route on it, so scrapes never count as the app's requests."""
    sock = tmp_path / "metrics.sock"
    return sock, {"unix": str(sock), "routes": [{"path": "/metrics", "metrics": {}}]}


def metrics_instance(serve, tmp_path, workers, fixed_port=False, ready_timeout=60, **kw):
    """metrics_app with a "web" TCP listener and the metrics socket, once
    every worker is ready. fixed_port: a reload keeps the listener only if
    its address stays, so port 0 would not do."""
    sock, metrics = metrics_socket(tmp_path)
    addr = f"127.0.0.1:{free_port() if fixed_port else 0}"
    if fixed_port:
        kw["listener"] = {"tcp": addr}
    server = serve("metrics_app:app", workers=workers,
                   listeners=[{"tcp": addr, "name": "web"}, metrics], **kw)
    wait_for(lambda: server.stderr().count("worker ready") >= workers, ready_timeout,
             f"{workers} workers ready")
    return server, sock


def promtool_check(text):
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian package prometheus; tools/dev.sh installs it)")
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture
def instance(serve, tmp_path):
    return metrics_instance(serve, tmp_path, 4,
                            routes=[{"name": "hz", "path": "/healthz", "health": {}}])


def test_summed_over_four_workers_after_a_known_mix(instance):
    server, sock = instance
    url = server.url
    pids, sent = [], []

    def get(path, **kw):
        r = httpx.request(kw.pop("method", "GET"), url + path, **kw)  # a connection each
        pids.append(r.text.split()[0]) if path != "/healthz" else None
        sent.append(len(r.content))
        return r

    # Four requests that each hold their worker for 0.8 s, started 0.2 s
    # apart: each next connection is accepted by a worker that is free.
    threads = []
    for _ in range(4):
        t = threading.Thread(target=get, args=("/block",))
        t.start()
        threads.append(t)
        time.sleep(0.2)
    for t in threads:
        t.join()
    for _ in range(3):
        assert get("/echo", method="POST", content=b"x" * 10).text.endswith(" 10")
    assert get("/missing").status_code == 404
    for _ in range(2):
        assert get("/healthz").text == "ok\n"
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(b"GARBAGE\r\n\r\n")
        status, _, body, _ = read_response(f)
        assert status == 400
        sent.append(len(body))
    assert len(set(pids)) >= 2, f"every request went to one worker: {pids}"

    web = {"listener": "web"}
    req = "saltare_http_requests_total"

    def settled():
        # A worker counts an exchange once its response is written, and a
        # connection once it saw the client's close: the client may be a
        # step ahead of both. Scrape until the last ones are in.
        text = scrape(sock).text
        m = parse(text)
        done = (sum(v for (n, l), v in m.items() if n == req and ("listener", "web") in l) >= 11
                and value(m, "saltare_connections_open", **web) == 0
                and value(m, "saltare_http_requests_in_flight", **web) == 0)
        return (text, m) if done else None

    text, m = wait_for(settled, 10, "the last exchanges counted",
                       lambda: f":\n{scrape(sock).text}")
    promtool_check(text)
    assert value(m, req, route="", method="GET", status="2xx", **web) == 4, text
    assert value(m, req, route="", method="POST", status="2xx", **web) == 3
    assert value(m, req, route="", method="GET", status="4xx", **web) == 1
    assert value(m, req, route="hz", method="GET", status="2xx", **web) == 2
    assert value(m, req, route="", method="other", status="4xx", **web) == 1
    assert sum(v for (n, l), v in m.items() if n == req and ("listener", "web") in l) == 11
    assert value(m, "saltare_connections_rejected_total", reason="parse_error", **web) == 1
    assert value(m, "saltare_http_request_body_bytes_total", **web) == 30
    assert value(m, "saltare_http_response_body_bytes_total", **web) == sum(sent)
    assert value(m, "saltare_connections_accepted_total", **web) == 11
    assert value(m, "saltare_connections_open", **web) == 0
    assert value(m, "saltare_http_requests_in_flight", **web) == 0
    assert value(m, "saltare_workers") == 4
    assert len([k for k in m if k[0] == "saltare_process_resident_memory_bytes"]) == 5
    assert all(v > 1e6 for (n, _), v in m.items() if n == "saltare_process_resident_memory_bytes")
    info = [dict(l) for (n, l) in m if n == "saltare_build_info"]
    assert info and info[0]["python"].startswith("3.") and info[0]["loop"] in ("asyncio", "uvloop")

    # The histogram: cumulative buckets, +Inf = _count = the route's requests.
    h = "saltare_http_request_duration_seconds"
    for route, count in (("", 9), ("hz", 2)):
        labels = {"route": route, **web}
        buckets = sorted(
            ((float(dict(l)["le"]), v) for (n, l), v in m.items()
             if n == h + "_bucket" and dict(l).items() >= labels.items()),
        )
        assert len(buckets) == 14
        counts = [v for _, v in buckets]
        assert counts == sorted(counts)
        assert counts[-1] == value(m, h + "_count", **labels) == count
    # The four blocked requests took 0.8 s or more each.
    assert value(m, h + "_bucket", route="", le="0.5", **web) <= 5
    assert value(m, h + "_sum", route="", **web) >= 3.2


def test_openmetrics_when_accept_asks_for_it(instance):
    server, sock = instance
    assert httpx.get(server.url + "/a").status_code == 200
    # counted once its response is written: the client may be a step ahead
    wait_for(lambda: sum(v for (n, l), v in parse(scrape(sock).text).items()
                         if n == "saltare_http_requests_total" and ("listener", "web") in l) == 1,
             10, "the request counted")
    r = scrape(sock, accept="application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    assert r.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert r.text.endswith("# EOF\n")
    parser = pytest.importorskip("prometheus_client.openmetrics.parser")
    families = {f.name: f for f in parser.text_string_to_metric_families(r.text)}
    assert families["saltare_http_requests"].type == "counter"
    assert families["saltare_build"].type == "info"
    assert families["saltare_http_request_duration_seconds"].type == "histogram"
    got = [s.value for s in families["saltare_http_requests"].samples
           if s.labels.get("listener") == "web"]
    assert got == [1.0]
    plain = scrape(sock)
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# EOF" not in plain.text


def test_source_limits_keep_others_out(serve):
    server = serve(
        "metrics_app:app",
        routes=[{"path": "/metrics", "source": ["10.0.0.0/8"], "metrics": {}}],
    )
    r = httpx.get(server.url + "/metrics")
    assert r.status_code == 403
    assert "saltare_" not in r.text


def test_refused_connections_are_counted_and_warned_once_a_second(serve, tmp_path):
    sock, metrics = metrics_socket(tmp_path)
    server = serve(
        "metrics_app:app",
        listeners=[
            {"tcp": "127.0.0.1:0", "name": "web"},
            metrics,
        ],
        limits={"max_connections": 1},
    )
    server.wait_serving()
    mark = server.mark()
    held = server.connect()
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with held.makefile("rb") as f:
        assert read_response(f)[0] == 200  # the worker holds it now
        for _ in range(5):
            with server.connect() as s:
                s.settimeout(10)
                assert s.recv(100) == b""  # accepted and closed at once
    held.close()
    warned = wait_for(
        lambda: [l for l in lines_after(server.log_path, mark) if "max_connections" in l],
        10, "a max_connections warning")
    counts = [int(re.search(r"reached: (\d+) connection", l).group(1)) for l in warned]
    assert counts[0] == 1 and sum(counts) <= 5 and len(warned) <= 5, warned
    assert "web: limits.max_connections (1) reached" in warned[0]

    def rejected():
        # the metrics socket counts against the same worker's limit: retry
        # until the held connection is gone from it
        try:
            m = parse(scrape(sock).text)
        except (httpx.HTTPError, AssertionError):
            return None
        return value(m, "saltare_connections_rejected_total", listener="web",
                     reason="max_connections")

    assert wait_for(rejected, 10, "a scrape") >= 5


def test_client_limits_count_their_refusals(serve, tmp_path):
    sock, metrics = metrics_socket(tmp_path)
    server = serve(
        "metrics_app:app",
        listeners=[
            {"tcp": "127.0.0.1:0", "name": "web",
             "limits": {"rate": {"per_sec": 1, "burst": 2}, "max_connections_per_ip": 1}},
            metrics,
        ],
    )
    server.wait_serving()
    held = server.connect()
    statuses = []
    with held.makefile("rb") as f:
        for _ in range(4):  # the burst of 2, then 429s on the same connection
            held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            statuses.append(read_response(f)[0])
        with server.connect() as s:  # a second connection from the same address
            s.settimeout(10)
            try:
                assert s.recv(100) == b""  # closed at accept
            except ConnectionResetError:
                pass
    held.close()
    assert statuses == [200, 200, 429, 429], statuses

    def counted():
        m = parse(scrape(sock).text)
        got = (value(m, "saltare_connections_rejected_total", listener="web", reason="rate"),
               value(m, "saltare_connections_rejected_total", listener="web", reason="per_ip"))
        return got if got == (2, 1) else None

    wait_for(counted, 10, "2 rate and 1 per_ip refusals")


def test_bad_proxy_headers_are_counted_and_warned_once_a_second(serve, tmp_path):
    sock, metrics = metrics_socket(tmp_path)
    server = serve(
        "metrics_app:app",
        listeners=[
            {"tcp": "127.0.0.1:0", "name": "edge", "proxy": {"protocol": "v1"}},
            metrics,
        ],
    )
    server.wait_serving()
    mark = server.mark()
    t0 = time.monotonic()
    for _ in range(10):
        with server.connect() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # no PROXY header
            try:
                assert s.recv(100) == b""  # closed, not answered
            except ConnectionResetError:  # closed with our bytes unread
                pass
    elapsed = time.monotonic() - t0

    def counted():
        m = parse(scrape(sock).text)
        n = value(m, "saltare_connections_rejected_total", listener="edge",
                  reason="proxy_protocol")
        return n if n == 10 else None

    wait_for(counted, 10, "10 proxy_protocol rejects")
    lines = [l for l in lines_after(server.log_path, mark) if "proxy: closing connection" in l]
    assert lines and lines[0].endswith(": no PROXY protocol header"), lines
    if elapsed < 0.9:  # all within one second: one line (the rest are counted for the next)
        assert len(lines) == 1, lines
    else:
        assert len(lines) <= 10


def test_websockets_open_and_messages(serve, tmp_path):
    import asyncio

    import websockets

    sock, metrics = metrics_socket(tmp_path)
    server = serve(
        "ws_app:app",
        listeners=[
            {"tcp": "127.0.0.1:0", "name": "ws"},
            metrics,
        ],
    )
    url = f"ws://127.0.0.1:{server.port}/echo"

    def ws_value(name, **labels):
        return value(parse(scrape(sock).text), name, listener="ws", **labels)

    async def scenario():
        async with websockets.connect(url) as ws:
            for text in ("a", "b", "c"):
                await ws.send(text)
                assert await ws.recv() == text
            assert ws_value("saltare_websockets_open") == 1
            assert ws_value("saltare_websocket_messages_total", direction="in") == 3
            assert ws_value("saltare_websocket_messages_total", direction="out") == 3

    asyncio.run(asyncio.wait_for(scenario(), 20))
    wait_for(lambda: ws_value("saltare_websockets_open") == 0, 10, "the WebSocket closed")
    assert ws_value("saltare_websockets_opened_total") == 1
    m = parse(scrape(sock).text)
    assert value(m, "saltare_http_requests_total", listener="ws", route="", method="GET",
                 status="1xx") == 1
    assert value(m, "saltare_http_requests_in_flight", listener="ws") == 0


def test_tls_handshakes_and_failures(serve, tmp_path):
    import ssl

    from conftest import ROOT

    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(["sh", str(ROOT / "tools" / "testcerts.sh"), str(certs)], check=True,
                   capture_output=True)
    sock, metrics = metrics_socket(tmp_path)
    server = serve(
        "metrics_app:app",
        listeners=[
            {"tcp": "127.0.0.1:0", "name": "tls",
             "tls": {"cert": str(certs / "server.pem"), "key": str(certs / "server.key")}},
            metrics,
        ],
        timeouts={"handshake": "1s"},
    )
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", server.port)) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", server.port)) as s:  # plain HTTP: no handshake
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            s.recv(100)
        except ConnectionResetError:
            pass
    slow = socket.create_connection(("127.0.0.1", server.port))  # says nothing: times out

    def failures(reason):
        return value(parse(scrape(sock).text), "saltare_tls_handshake_failures_total",
                     listener="tls", reason=reason)

    wait_for(lambda: failures("timeout") == 1, 15, "the handshake timeout")
    slow.close()
    m = parse(scrape(sock).text)
    assert value(m, "saltare_tls_handshakes_total", listener="tls") == 2
    # the plain HTTP request
    assert value(m, "saltare_tls_handshake_failures_total", listener="tls", reason="not_tls") == 1
    assert value(m, "saltare_timeouts_total", listener="tls", kind="handshake") == 1
    # the metrics listener has no TLS: no TLS series for it
    assert ("saltare_tls_handshakes_total",
            frozenset({("listener", str(sock))})) not in m


def test_a_respawned_worker_keeps_the_instance_counters(serve, tmp_path):
    import os
    import signal

    server, sock = metrics_instance(serve, tmp_path, 2, ready_timeout=30)
    pids = set()
    for _ in range(20):
        pids.add(int(httpx.get(server.url + "/").text.split()[0]))
    total = lambda: value(parse(scrape(sock).text), "saltare_http_requests_total",  # noqa: E731
                          listener="web", route="", method="GET", status="2xx")
    wait_for(lambda: total() == 20, 10, "20 requests counted (once written)",
             lambda: f": {total()}")
    victim = next(iter(pids))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: server.stderr().count("worker ready") >= 3, 30, "the respawned worker")
    m = parse(scrape(sock).text)
    assert value(m, "saltare_worker_restarts_total") == 1
    assert value(m, "saltare_workers") == 2
    workers = {dict(l)["pid"] for (n, l) in m if n == "saltare_process_start_time_seconds"
               and dict(l)["process"] != "master"}
    assert str(victim) not in workers and len(workers) == 2
    # what the dead worker counted is still there (counters never go back)
    for _ in range(5):
        assert httpx.get(server.url + "/").status_code == 200
    wait_for(lambda: total() == 25, 10, "25 requests counted", lambda: f": {total()}")


def web_gets(sock):
    return value(parse(scrape(sock).text), "saltare_http_requests_total",
                 listener="web", route="", method="GET", status="2xx")


def master_start(samples):
    return [v for (n, l), v in samples.items()
            if n == "saltare_process_start_time_seconds" and dict(l)["process"] == "master"]


def sighup(server, generation):
    import os
    import signal

    mark = server.mark()
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: f"reload: generation {generation} ready" in server.stderr_since(mark),
             90, f"reload: generation {generation} ready", lambda: f":\n{server.stderr()}")
    return mark


def test_counters_go_on_across_a_reload(serve, tmp_path):
    import os
    import signal

    server, sock = metrics_instance(serve, tmp_path, 2, fixed_port=True)
    for _ in range(10):
        assert httpx.get(server.url + "/").status_code == 200
    wait_for(lambda: web_gets(sock) == 10, 10, "10 requests counted")
    # a worker respawned before the reload: the restart count goes on too
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: server.stderr().count("worker ready") >= 3, 60, "the respawned worker")
    before = parse(scrape(sock).text)
    assert value(before, "saltare_worker_restarts_total") == 1
    assert value(before, "saltare_reload_generation") == 1

    mark = sighup(server, 2)
    for _ in range(7):
        assert httpx.get(server.url + "/").status_code == 200
    # the same series, never lower: what the old generation counted is kept
    wait_for(lambda: web_gets(sock) == 17, 10, "17 requests counted",
             lambda: f":\n{scrape(sock).text}")
    after = parse(scrape(sock).text)
    assert value(after, "saltare_reload_generation") == 2
    assert value(after, "saltare_worker_restarts_total") == 1
    assert master_start(after) == master_start(before) != []
    # the old workers drain and exit; their slots stay in the totals
    wait_for(lambda: "drained and" in server.stderr_since(mark), 60, "the old workers drained")
    wait_for(lambda: value(parse(scrape(sock).text), "saltare_workers") == 2, 30,
             "2 workers listed")
    assert web_gets(sock) == 17
    assert "counters restart" not in server.stderr()

    # a second reload carries the same registry on again
    sighup(server, 3)
    assert httpx.get(server.url + "/").status_code == 200
    wait_for(lambda: web_gets(sock) == 18, 10, "18 requests counted")


def test_a_reload_that_changes_the_routes_starts_a_new_registry_and_says_why(serve, tmp_path):
    import json

    server, sock = metrics_instance(serve, tmp_path, 2, fixed_port=True)
    for _ in range(5):
        assert httpx.get(server.url + "/").status_code == 200
    wait_for(lambda: web_gets(sock) == 5, 10, "5 requests counted")
    before = parse(scrape(sock).text)
    config = tmp_path / "saltare-0.yaml"
    doc = json.loads(config.read_text())
    doc["listeners"][0]["routes"] = [{"name": "hz", "path": "/healthz", "health": {}}]
    config.write_text(json.dumps(doc))

    mark = sighup(server, 2)
    out = server.stderr_since(mark)
    assert out.count("metrics: a new registry, counters restart from zero: the listeners, "
                     "routes or slot count changed the registry's size") == 1, out
    assert httpx.get(server.url + "/").status_code == 200
    wait_for(lambda: web_gets(sock) == 1, 10, "1 request counted (a reset)")
    after = parse(scrape(sock).text)
    assert value(after, "saltare_reload_generation") == 2
    assert master_start(after) == master_start(before) != []


def test_many_more_workers_than_at_start_all_count(serve, tmp_path):
    import signal

    # One worker at start; the registry used to have 2 * (1 + 16) slots.
    n = 40
    # preload: the workers are forks of the master, not 40 imports
    server, sock = metrics_instance(serve, tmp_path, 1, fixed_port=True, preload="on")
    for k in range(2, n + 1):
        server.proc.send_signal(signal.SIGTTIN)  # one at a time: they coalesce
        server.wait_log(f"SIGTTIN: {k} workers", timeout=30)
    wait_for(lambda: server.stderr().count("worker ready") >= n, 180, f"{n} workers ready")
    assert "no free slot" not in server.stderr()
    m = parse(scrape(sock).text)
    assert value(m, "saltare_workers") == n
    workers = {dict(l)["pid"] for (name, l) in m if name == "saltare_process_start_time_seconds"
               and dict(l)["process"] != "master"}
    assert workers == {str(p) for p in server.worker_pids()}
    pids = set()
    for _ in range(200):
        pids.add(httpx.get(server.url + "/").text.split()[0])
    wait_for(lambda: web_gets(sock) == 200, 10, "200 requests counted",
             lambda: f" (served by {len(pids)} workers)")
