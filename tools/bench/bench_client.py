"""Load clients for tools/bench/bench.py, run as separate processes (pinned by the harness).

    bench_client.py hold PORT N          open N keep-alive connections, one request each,
                                         then idle; commands on stdin (see hold())
    bench_client.py upload PORT BYTES    stream BYTES to POST /upload
    bench_client.py download PORT BYTES READ_BYTES PAUSE_MS
                                         GET /download?size=BYTES, reading READ_BYTES
                                         then sleeping PAUSE_MS, until the body is done
    bench_client.py tlshold PORT N       hold, over TLS (connections opened one by one)
    bench_client.py handshakes PORT N    N TLS 1.3 connections in a row, each a full
                                         handshake (no session offered) carrying one
                                         `Connection: close` GET /
    bench_client.py resumed PORT N       the same, each resuming the session of a
                                         first connection (a ticket, no certificate)

Every command prints one JSON object per report on stdout and exits non-zero on failure.
All sockets go to 127.0.0.1 only; every wait is bounded by a deadline.
"""

import errno
import json
import os
import resource
import selectors
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"
IO_TIMEOUT = 60.0  # seconds: bound for any single transfer
HOLD_OPEN_TIMEOUT = 120.0  # seconds: bound for opening all N connections
HOLD_WINDOW = 64  # connections in flight (connecting or awaiting a response) at once


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, hard), max(need, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def response_complete(buf):
    """True once `buf` holds one full response with a Content-Length (or chunked) body."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = buf[:head_end].lower()
    body = len(buf) - head_end - 4
    for line in head.split(b"\r\n")[1:]:
        if line.startswith(b"content-length:"):
            return body >= int(line.split(b":", 1)[1])
    if b"transfer-encoding: chunked" in head:
        return buf.endswith(b"0\r\n\r\n")
    return True


class Conn:
    __slots__ = ("sock", "state", "buf")

    def __init__(self, sock):
        self.sock = sock
        self.state = "connecting"
        self.buf = b""


def start_conn(sel, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    err = sock.connect_ex((HOST, port))
    if err not in (0, errno.EINPROGRESS):
        sock.close()
        raise OSError(err, os.strerror(err))
    conn = Conn(sock)
    sel.register(sock, selectors.EVENT_WRITE, conn)
    return conn


def step_conn(sel, conn, request):
    """Advances one connection; returns "idle", "failed:<why>" or None (still busy)."""
    sock = conn.sock
    if conn.state == "connecting":
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return "failed:connect " + errno.errorcode.get(err, str(err))
        try:
            sock.send(request)  # a few dozen bytes always fit an empty send buffer
        except OSError as e:
            return "failed:send " + errno.errorcode.get(e.errno, str(e.errno))
        conn.state = "reading"
        sel.modify(sock, selectors.EVENT_READ, conn)
        return None
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return None
    except OSError as e:
        return "failed:recv " + errno.errorcode.get(e.errno, str(e.errno))
    if not data:
        return "failed:closed before response"
    conn.buf += data
    if not response_complete(conn.buf):
        return None
    if not conn.buf.startswith(b"HTTP/1.1 200"):
        return "failed:status " + conn.buf[:12].decode("latin-1", "replace")
    conn.buf = b""
    sel.unregister(sock)
    return "idle"


def open_many(port, n, path):
    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, HOST, port)).encode()
    sel = selectors.DefaultSelector()
    idle, failures = [], {}
    started, busy = 0, 0
    deadline = time.monotonic() + HOLD_OPEN_TIMEOUT
    while (started < n or busy) and time.monotonic() < deadline:
        while started < n and busy < HOLD_WINDOW:
            started += 1
            try:
                start_conn(sel, port)
                busy += 1
            except OSError as e:
                key = "failed:connect " + errno.errorcode.get(e.errno, str(e.errno))
                failures[key] = failures.get(key, 0) + 1
        for key, _ in sel.select(timeout=1.0):
            outcome = step_conn(sel, key.data, request)
            if outcome is None:
                continue
            busy -= 1
            if outcome == "idle":
                idle.append(key.data.sock)
            else:
                failures[outcome] = failures.get(outcome, 0) + 1
                sel.unregister(key.fileobj)
                key.fileobj.close()
    for key in list(sel.get_map().values()):
        failures["failed:timeout"] = failures.get("failed:timeout", 0) + 1
        sel.unregister(key.fileobj)
        key.fileobj.close()
    sel.close()
    return idle, failures


def count_alive(socks):
    alive = 0
    for sock in socks:
        try:
            if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                alive += 1  # unexpected bytes, but the connection is open
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def hold(port, n, path):
    """Opens N connections and idles. stdin: "check" -> {"alive": k}; "close"/EOF -> exit."""
    limit = raise_nofile(n + 64)
    t0 = time.monotonic()
    idle, failures = open_many(port, n, path)
    emit(
        {
            "opened": len(idle),
            "wanted": n,
            "failures": failures,
            "seconds": round(time.monotonic() - t0, 3),
            "nofile": limit,
        }
    )
    for line in sys.stdin:
        if line.strip() == "check":
            emit({"alive": count_alive(idle)})
        else:
            break
    for sock in idle:
        sock.close()
    return 0


def tls_context():
    """TLS 1.3, no verification: the harness measures the server, not the PKI."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def tls_get(ctx, port, close, session=None):
    """One GET / over a new TLS connection; returns the socket (closed if `close`)."""
    sock = ctx.wrap_socket(socket.create_connection((HOST, port), timeout=IO_TIMEOUT),
                           session=session)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n%s\r\n"
                 % (b"Connection: close\r\n" if close else b""))
    buf = b""
    while not response_complete(buf):
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    if not buf.startswith(b"HTTP/1.1 200"):
        raise ConnectionError("no 200 response over TLS (%r)" % buf[:40])
    if close:
        while sock.recv(65536):  # to the server's close: the ticket has arrived
            pass
        sock.close()
    return sock


def tls_alive(socks):
    alive = 0
    for s in socks:
        raw = socket.fromfd(s.fileno(), socket.AF_INET, socket.SOCK_STREAM)  # a dup
        try:
            if raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                alive += 1  # a late record (a ticket): still open
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
        finally:
            raw.close()
    return alive


def tlshold(port, n):
    """hold() over TLS: opens N connections one after the other (a handshake each)."""
    limit = raise_nofile(n + 64)
    ctx = tls_context()
    t0 = time.monotonic()
    idle, failures = [], {}
    for _ in range(n):
        try:
            idle.append(tls_get(ctx, port, close=False))
        except OSError as e:
            failures[type(e).__name__] = failures.get(type(e).__name__, 0) + 1
    emit({"opened": len(idle), "wanted": n, "failures": failures,
          "seconds": round(time.monotonic() - t0, 3), "nofile": limit})
    for line in sys.stdin:
        if line.strip() == "check":
            emit({"alive": tls_alive(idle)})
        else:
            break
    for sock in idle:
        sock.close()
    return 0


def handshakes(port, n, resume):
    """N connections in a row: full handshakes, or resumptions of a first session."""
    ctx = tls_context()
    session = None
    if resume:
        first = tls_get(ctx, port, close=False)  # the ticket came before the response
        session = first.session
        first.close()
    reused = 0
    t0 = time.monotonic()
    for _ in range(n):
        sock = ctx.wrap_socket(socket.create_connection((HOST, port), timeout=IO_TIMEOUT),
                               session=session)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass
        reused += sock.session_reused
        sock.close()
    seconds = time.monotonic() - t0
    emit({"ok": True, "count": n, "reused": reused, "seconds": round(seconds, 3)})
    return 0


def read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed before the response head")
        buf += data
        if len(buf) > 65536:
            raise ConnectionError("response head over 64 KiB")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, length, rest


def upload(port, size):
    chunk = memoryview(b"u" * (64 * 1024))
    t0 = time.monotonic()
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as sock:
        head = "POST /upload HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n" % (HOST, port, size)
        sock.sendall((head + "Content-Type: application/octet-stream\r\n\r\n").encode())
        sent = 0
        while sent < size:
            n = min(len(chunk), size - sent)
            sock.sendall(chunk[:n])
            sent += n
        status, length, body = read_head(sock)
        while length is not None and len(body) < length:
            data = sock.recv(65536)
            if not data:
                break
            body += data
    seconds = time.monotonic() - t0
    ok = status == 200 and body.strip() == str(size).encode()
    emit({"ok": ok, "status": status, "sent": sent, "echo": body[:32].decode("latin-1"),
          "seconds": round(seconds, 3)})
    return 0 if ok else 1


def download(port, size, read_bytes, pause_ms):
    t0 = time.monotonic()
    buf = bytearray(256 * 1024)
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as sock:
        req = "GET /download?size=%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (size, HOST, port)
        sock.sendall(req.encode())
        status, length, rest = read_head(sock)
        got = len(rest)
        while length is not None and got < length:
            if time.monotonic() - t0 > IO_TIMEOUT:
                raise TimeoutError("download exceeded %ds" % IO_TIMEOUT)
            burst = 0
            while burst < read_bytes and got < length:
                n = sock.recv_into(buf, min(len(buf), read_bytes - burst, length - got))
                if n == 0:
                    raise ConnectionError("closed after %d of %d bytes" % (got, length))
                burst += n
                got += n
            time.sleep(pause_ms / 1000.0)
    ok = status == 200 and length == size and got == size
    emit({"ok": ok, "status": status, "received": got, "seconds": round(time.monotonic() - t0, 3)})
    return 0 if ok else 1


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "hold":
            return hold(int(argv[2]), int(argv[3]), os.environ.get("BENCH_PATH", "/"))
        if len(argv) == 4 and argv[1] == "upload":
            return upload(int(argv[2]), int(argv[3]))
        if len(argv) == 4 and argv[1] == "tlshold":
            return tlshold(int(argv[2]), int(argv[3]))
        if len(argv) == 4 and argv[1] in ("handshakes", "resumed"):
            return handshakes(int(argv[2]), int(argv[3]), argv[1] == "resumed")
        if len(argv) == 6 and argv[1] == "download":
            return download(int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5]))
    except (OSError, ValueError) as e:
        emit({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
        return 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
