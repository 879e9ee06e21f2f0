"""WebSocket benchmark: saltare side by side with uvicorn (its `websockets` implementation,
uvloop + httptools), same raw ASGI echo app (tools/bench/apps/ws_echo.py), one run.

Usage
-----

    /usr/bin/python3 tools/bench/ws_bench.py [--servers saltare,uvicorn] [--conns 1000,10000]
                                             [--clients 64] [--duration S] [--runs N]
                                             [--saltare PATH] [--out FILE]

Per server it measures, each on a freshly started server pinned to CPU 0 (clients on CPU 1):

- Pss per idle WebSocket at each --conns count, compression off and on: a client opens N
  WebSockets (raw sockets; the opening handshake offers `permessage-deflate;
  client_max_window_bits` when compression is on, as the websockets client and browsers
  do), sends one 5-byte text message on each and reads its echo, then idles. Reported:
  (Pss of the server tree with N open - Pss before) / N, and how many the server still
  held when measured. Keepalive pings are pushed out of the way (saltare
  `websocket.ping_interval: 1h`, uvicorn `--ws-ping-interval 3600`), so the client
  needs to answer none;
- echo round trips per second with --clients connections (default 64), each sending a
  32-byte text message and waiting for its echo, for --duration seconds, compression off
  and on; and round trips per CPU-second of the server (its user + system time during the
  run): the Python client on the other core may be the bottleneck, this figure is not
  bound by it.

uvicorn's own default offers compression (`--ws-per-message-deflate` true) with context
takeover: its `websockets` keeps a zlib compressor and decompressor per connection.
saltare answers with server_no_context_takeover and client_no_context_takeover and keeps
no zlib state between messages (see README).

--runs N repeats everything and reports medians. Every server is stopped on every path
out. Needs python3-uvicorn, python3-websockets, python3-uvloop, python3-httptools, and a
RLIMIT_NOFILE hard limit above the largest --conns (root is fine).

Example (the figures in README.md):

    bazel build //:saltare && /usr/bin/python3 tools/bench/ws_bench.py --runs 1
"""

import argparse
import base64
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import bench  # noqa: E402  (process, /proc and probing helpers)

PYTHON = bench.PYTHON
HOST = bench.HOST
APP = "ws_echo:app"
OFFER = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
MASK = b"\x12\x34\x56\x78"
OPEN_TIMEOUT = 300.0  # seconds to open all N sockets
ECHO_MSG = b"0123456789abcdef0123456789abcdef"  # 32 bytes of text


# ---------------------------------------------------------------------------------------
# Client side (run as `ws_bench.py _hold ...` / `_echo ...` on the client CPU)


def masked_frame(payload, opcode=0x1):
    n = len(payload)
    assert n < 126
    return bytes([0x80 | opcode, 0x80 | n]) + MASK + bytes(
        b ^ MASK[i % 4] for i, b in enumerate(payload))


def handshake(port, deflate):
    key = base64.b64encode(os.urandom(16))
    return (b"GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
            % (HOST.encode(), port, key, OFFER if deflate else b""))


def frame_len(buf):
    """Length of the first complete frame in buf (server frames are unmasked), or 0."""
    if len(buf) < 2:
        return 0
    n, head = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return 0
        n, head = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return 0
        n, head = struct.unpack("!Q", buf[2:10])[0], 10
    return head + n if len(buf) >= head + n else 0


def open_ws(port, deflate, timeout=30.0):
    """A blocking WebSocket that has echoed one message; returns (socket, extensions)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.sendall(handshake(port, deflate))
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(4096)
        if not data:
            raise ConnectionError("closed during the handshake")
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n")[0].decode("latin-1"))
    ext = None
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-extensions":
            ext = value.strip().decode("latin-1")
    s.sendall(masked_frame(b"hello"))
    while not frame_len(buf):
        data = s.recv(4096)
        if not data:
            raise ConnectionError("closed before the echo")
        buf += data
    return s, ext


def client_hold(port, n, deflate):
    """Opens n WebSockets and idles; stdin `check` reports how many are open, `close` ends."""
    bench.raise_nofile(n + 256)
    socks, failures, ext = [], {}, None
    t0 = time.monotonic()
    while len(socks) < n and time.monotonic() - t0 < OPEN_TIMEOUT:
        try:
            s, e = open_ws(port, deflate)
            ext = ext or e
            s.setblocking(False)
            socks.append(s)
        except OSError as e:
            failures[type(e).__name__] = failures.get(type(e).__name__, 0) + 1
            if sum(failures.values()) > 100:
                break
    print(json.dumps({"opened": len(socks), "failures": failures, "extensions": ext,
                      "seconds": round(time.monotonic() - t0, 1)}), flush=True)
    for line in sys.stdin:
        if line.strip() == "check":
            alive = 0
            for s in socks:
                try:
                    alive += s.recv(65536) != b""  # data (a ping) also means open
                except BlockingIOError:
                    alive += 1
                except OSError:
                    pass
            print(json.dumps({"alive": alive}), flush=True)
        elif line.strip() == "close":
            break
    for s in socks:
        s.close()


def client_echo(port, clients, seconds, deflate):
    """`clients` WebSockets each sending ECHO_MSG and waiting for its echo, for `seconds`."""
    conns = [open_ws(port, deflate)[0] for _ in range(clients)]
    frame = masked_frame(ECHO_MSG)
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in conns:
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    count = 0
    t0 = time.monotonic()
    end = t0 + seconds
    for s in conns:
        s.send(frame)
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            data = s.recv(65536)
            if not data:
                raise ConnectionError("the server closed an echo connection")
            buf = bufs[s] + data
            while True:
                n = frame_len(buf)
                if not n:
                    break
                buf = buf[n:]
                count += 1
                s.send(frame)
            bufs[s] = buf
    elapsed = time.monotonic() - t0
    print(json.dumps({"round_trips": count, "seconds": elapsed}), flush=True)
    for s in conns:
        s.close()


# ---------------------------------------------------------------------------------------
# Servers


def saltare_argv(opts, port, workdir):
    path = os.path.join(workdir, "saltare-ws-%d.yaml" % port)
    with open(path, "w") as f:
        f.write(
            "app:\n  target: %s\n  path: [%s]\n  loop: auto\n"
            "workers: 1\n"
            "listeners:\n  - tcp: \"%s:%d\"\n"
            "log:\n  access: off\n"
            "timeouts:\n  keep_alive: 300s\n"
            "limits:\n  max_connections: %d\n"
            "websocket:\n  ping_interval: 1h\n"
            % (APP, json.dumps(bench.APPS_DIR), HOST, port, max(opts.conns) + 1024))
    return [opts.saltare, "-c", path]


def uvicorn_argv(opts, port, workdir):
    return [PYTHON, "-m", "uvicorn", APP, "--app-dir", bench.APPS_DIR, "--host", HOST,
            "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--ws",
            "websockets", "--ws-ping-interval", "3600", "--ws-ping-timeout", "3600",
            "--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "300"]


SERVERS = {"saltare": ("saltare", saltare_argv),
           "uvicorn": ("uvicorn (websockets, uvloop+httptools)", uvicorn_argv)}


class Server:
    def __init__(self, name, opts, workdir):
        self.name = name
        self.port = bench.free_port()
        argv = SERVERS[name][1](opts, self.port, workdir)
        self.log_path = os.path.join(workdir, "%s-%d.log" % (name, self.port))
        env = dict(os.environ, PYTHONPATH=bench.APPS_DIR, PYTHONDONTWRITEBYTECODE="1")
        with open(self.log_path, "wb") as log:
            self.proc = bench.spawn(argv, bench.SERVER_CPU, cwd=bench.APPS_DIR, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise bench.BenchError("%s did not start:\n%s" % (
                    name, bench.log_tail(self.log_path)))
            try:
                if bench.http_get_status(self.port, "/", 2.0) == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)

    def stop(self):
        bench.stop_process(self.proc)


def client(args):
    return bench.spawn([PYTHON, os.path.abspath(__file__)] + [str(a) for a in args],
                       bench.CLIENT_CPU, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       text=True)


def measure_idle(name, opts, workdir, n, deflate):
    srv = Server(name, opts, workdir)
    try:
        before = bench.settled_pss_kib(srv.proc.pid)
        c = client(["_hold", srv.port, n, int(deflate)])
        try:
            opened = bench.read_json_line(c, OPEN_TIMEOUT + 30)
            after = bench.settled_pss_kib(srv.proc.pid, bound=10.0)
            c.stdin.write("check\n")
            c.stdin.flush()
            alive = bench.read_json_line(c, 60)["alive"]
            c.stdin.write("close\n")
            c.stdin.flush()
            c.wait(timeout=60)
        finally:
            bench.stop_process(c)
    finally:
        srv.stop()
    per = (after - before) * 1024.0 / alive if alive else None
    return {"bytes_per_ws": per, "opened": opened["opened"], "alive": alive,
            "extensions": opened["extensions"], "failures": opened["failures"],
            "open_seconds": opened["seconds"]}


def measure_echo(name, opts, workdir, deflate):
    srv = Server(name, opts, workdir)
    try:
        cpu0 = bench.tree_cpu_s(srv.proc.pid)
        c = client(["_echo", srv.port, opts.clients, opts.duration, int(deflate)])
        try:
            res = bench.read_json_line(c, opts.duration + 120)
            c.wait(timeout=30)
        finally:
            bench.stop_process(c)
        cpu = bench.tree_cpu_s(srv.proc.pid) - cpu0
    finally:
        srv.stop()
    rate = res["round_trips"] / res["seconds"]
    return {"rps": rate, "per_cpu_s": res["round_trips"] / cpu if cpu else None}


def median(values):
    values = [v for v in values if v is not None]
    return sorted(values)[len(values) // 2] if values else None


def main(argv):
    if argv and argv[0] == "_hold":
        return client_hold(int(argv[1]), int(argv[2]), argv[3] == "1")
    if argv and argv[0] == "_echo":
        return client_echo(int(argv[1]), int(argv[2]), float(argv[3]), argv[4] == "1")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--servers", default="saltare,uvicorn")
    p.add_argument("--conns", default="1000,10000")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--saltare", default=os.path.join(bench.REPO, "bazel-bin", "saltare"))
    p.add_argument("--out")
    opts = p.parse_args(argv)
    opts.conns = [int(x) for x in opts.conns.split(",")]
    servers = opts.servers.split(",")
    bench.raise_nofile(max(opts.conns) * 2 + 1024)
    results = {s: {} for s in servers}
    notes = []
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as workdir:
        try:
            for run in range(opts.runs):
                for s in servers:
                    for deflate in (False, True):
                        tag = "on" if deflate else "off"
                        for n in opts.conns:
                            r = measure_idle(s, opts, workdir, n, deflate)
                            results[s].setdefault("idle_%d_%s" % (n, tag), []).append(
                                r["bytes_per_ws"])
                            if r["alive"] < n or r["failures"]:
                                notes.append("%s %d/%s: opened %d, alive %d, failures %s" % (
                                    s, n, tag, r["opened"], r["alive"], r["failures"]))
                            results[s]["ext_" + tag] = r["extensions"]
                            print("%s idle @%d compression %s: %s B/ws (opened in %.1fs, "
                                  "alive %d, extensions %s)" % (
                                      s, n, tag, r["bytes_per_ws"] and round(r["bytes_per_ws"]),
                                      r["open_seconds"], r["alive"], r["extensions"]),
                                  file=sys.stderr, flush=True)
                        e = measure_echo(s, opts, workdir, deflate)
                        results[s].setdefault("echo_" + tag, []).append(e["rps"])
                        results[s].setdefault("echo_cpu_" + tag, []).append(e["per_cpu_s"])
                        print("%s echo compression %s: %.0f round trips/s, %.0f per CPU-s" % (
                            s, tag, e["rps"], e["per_cpu_s"] or 0), file=sys.stderr, flush=True)
        finally:
            bench.stop_all()
    rows = []
    for tag in ("off", "on"):
        for n in opts.conns:
            rows.append(("Pss per idle WebSocket @%d, compression %s (KiB)" % (n, tag),
                         "idle_%d_%s" % (n, tag), 1 / 1024.0, "%.1f"))
    for tag in ("off", "on"):
        rows.append(("echo round trips/s, %d clients, compression %s" % (opts.clients, tag),
                     "echo_" + tag, 1, "%.0f"))
        rows.append(("echo round trips per server CPU-second, compression %s" % tag,
                     "echo_cpu_" + tag, 1, "%.0f"))
    head = "| metric | " + " | ".join(SERVERS[s][0] for s in servers)
    if len(servers) == 2:
        head += " | ratio"
    lines = [head + " |", "|---" * (len(servers) + 1 + (len(servers) == 2)) + "|"]
    for label, key, scale, fmt in rows:
        vals = [median(results[s].get(key, [])) for s in servers]
        cells = [fmt % (v * scale) if v is not None else "n/a" for v in vals]
        if len(servers) == 2:
            cells.append("%.2fx" % (vals[0] / vals[1]) if vals[0] and vals[1] else "n/a")
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    for s in servers:
        lines.append("")
        lines.append("%s Sec-WebSocket-Extensions answered: %s" % (
            SERVERS[s][0], results[s].get("ext_on")))
    if notes:
        lines.append("")
        lines.extend("Note: " + n for n in notes)
    text = "\n".join(lines) + "\n"
    print(text)
    if opts.out:
        with open(opts.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
