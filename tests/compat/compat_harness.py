"""Runs the same app under saltare and under uvicorn and talks raw HTTP/1.1 to both.

Not a conftest.py: tests/e2e has one, and two modules named `conftest` on
sys.path would shadow each other.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = pathlib.Path(__file__).resolve().parent / "apps"
BIN = os.environ.get("SALTARE_BIN", str(ROOT / "bazel-bin" / "saltare"))
PYTHON = "/usr/bin/python3"  # Debian's, with python3-uvicorn
START_TIMEOUT = 20.0  # both import FastAPI; the machine may be busy
IO_TIMEOUT = 5.0


def free_port() -> int:
    """A free port outside the kernel's ephemeral range, which every bind to
    port 0 and every outgoing connection on the machine draw from (a port
    from it may be gone before the server binds it). The same as
    tests/e2e/conftest.py's free_port, which this module cannot import."""
    try:
        text = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low, high = map(int, text.split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    candidates = [*range(20000, low), *range(high + 1, 65536)]
    rng = random.SystemRandom()
    for _ in range(200 if candidates else 0):
        port = rng.choice(candidates)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, name: str, argv: list[str], port: int, log: pathlib.Path,
                 ready_text: str | None = None):
        self.name, self.port, self.log = name, port, log
        self.ready_text = ready_text  # in the output once it serves (else: once it listens)
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                argv, cwd=APPS, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if self.ready_text is None or self.ready_text in self.output():
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.02)
        raise AssertionError(f"{self.name} did not get ready:\n{self.output()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop:\n{self.output()}")


def start_saltare(tmp: pathlib.Path) -> Proc:
    port = free_port()
    config = {
        "app": {"target": "compat_app:app", "path": [str(APPS)], "lifespan": "on"},
        "workers": 1,
        "listeners": [{"tcp": f"127.0.0.1:{port}"}],
        "timeouts": {"shutdown": "5s"},
    }
    path = tmp / "saltare.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    # saltare listens before it imports the app (uvicorn after its lifespan
    # startup): wait for the worker's line, or the first exchange would
    # wait for FastAPI's import within IO_TIMEOUT.
    return Proc("saltare", [BIN, "-c", str(path)], port, tmp / "saltare.log",
                ready_text="worker ready: lifespan startup done, serving")


def start_uvicorn(tmp: pathlib.Path) -> Proc:
    port = free_port()
    argv = [PYTHON, "-m", "uvicorn", "compat_app:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    argv += ["--lifespan", "on", "--log-level", "warning", "--app-dir", str(APPS)]
    return Proc("uvicorn", argv, port, tmp / "uvicorn.log")


# ---- raw HTTP/1.1 ----------------------------------------------------------------


@dataclasses.dataclass
class Response:
    status: int
    version: str
    headers: list[tuple[str, str]]  # names lowercased, in wire order
    body: bytes
    framing: str  # "length", "chunked", "close" or "none"
    complete: bool  # the framing said where the body ends, and it all arrived


@dataclasses.dataclass
class Exchange:
    responses: list[Response]
    closed: bool  # the connection was closed after the last response
    error: str = ""  # what went wrong reading (EOF inside a head, a bad line...)

    @property
    def first(self) -> Response:
        return self.responses[0]


class Reader:
    def __init__(self, sock: socket.socket):
        self.sock, self.buf, self.eof = sock, b"", False

    def fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self) -> bytes | None:
        while b"\n" not in self.buf:
            if not self.fill():
                return None
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def take(self, n: int) -> bytes:
        while len(self.buf) < n and self.fill():
            pass
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def rest(self) -> bytes:
        while self.fill():
            pass
        data, self.buf = self.buf, b""
        return data


def read_response(r: Reader, head: bool) -> Response | None:
    line = r.line()
    if line is None:
        return None
    version, status, *_ = line.decode("latin-1").split(" ", 2) + [""]
    headers = []
    while True:
        h = r.line()
        if h is None:
            raise EOFError(f"EOF inside the head after {line!r}")
        if h == b"":
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))
    code = int(status)
    fields = dict(headers)
    if head or code in (204, 304) or 100 <= code < 200:
        return Response(code, version, headers, b"", "none", True)
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body, complete = b"", False
        while True:
            size_line = r.line()
            if size_line is None:
                break
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while (t := r.line()) not in (None, b""):
                    pass  # trailers
                complete = t is not None
                break
            chunk = r.take(size + 2)
            body += chunk[:size]
            if len(chunk) < size + 2:
                break
        return Response(code, version, headers, body, "chunked", complete)
    if "content-length" in fields:
        n = int(fields["content-length"])
        body = r.take(n)
        return Response(code, version, headers, body, "length", len(body) == n)
    return Response(code, version, headers, r.rest(), "close", True)


PROBE = b"GET /scope/probe HTTP/1.1\r\nHost: example.com\r\n\r\n"


def exchange(port: int, request: bytes | list[bytes], *, head: bool = False, expect: int = 1) -> Exchange:
    """Sends `request` (a list: the next part is sent after each 100
    Continue), reads up to `expect` final responses (fewer if the server
    closes), then finds out whether the connection stayed open by sending
    one more request."""
    parts = request if isinstance(request, list) else [request]
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        r = Reader(s)
        responses, error = [], ""
        s.sendall(parts[0])
        rest = parts[1:]
        try:
            while True:
                resp = read_response(r, head)
                if resp is None:
                    break
                responses.append(resp)
                if resp.status == 100 and rest:
                    s.sendall(rest.pop(0))
                    continue
                if resp.status >= 200:
                    expect -= 1
                    if expect == 0:
                        break
        except (EOFError, ValueError, socket.timeout) as e:
            error = f"{type(e).__name__}: {e}"
        closed = r.eof
        if not closed and not error:
            try:
                s.sendall(PROBE)
                probe = read_response(r, False)
                closed = probe is None
                if probe is not None and probe.status != 200:
                    error = f"probe answered {probe.status}"
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            except (EOFError, socket.timeout) as e:
                error = f"probe: {type(e).__name__}: {e}"
        return Exchange(responses, closed, error)


# ---- normalising -------------------------------------------------------------------

# Each entry: a difference two correct servers may show, and why.
DROPPED_HEADERS = {
    # RFC 9110 6.6.1: the origin's clock; differs between any two requests.
    "date",
    # RFC 9110 10.2.4: names the server software.
    "server",
}
# RFC 9112 6.1-6.3: a sender may frame a body with Content-Length or chunked
# coding when the app gave no length; the message (its content) is the same.
# Kept when the app set it itself (then both must send the app's value).
FRAMING_HEADERS = {"content-length", "transfer-encoding"}


def normal_headers(resp: Response, app_framing: bool) -> list[tuple[str, str]]:
    keep = [(n, v) for n, v in resp.headers if n not in DROPPED_HEADERS]
    if not app_framing:
        keep = [(n, v) for n, v in keep if n not in FRAMING_HEADERS]
    # RFC 9110 5.3: the order of fields with different names is not
    # significant; the order of same-name fields is (stable sort keeps it).
    return sorted(keep, key=lambda nv: nv[0])


# ASGI scope keys a conforming server may or may not provide: compared in
# the one case that shows them ("scope-basic", allowlisted), dropped elsewhere.
SCOPE_OPTIONAL = {
    # ASGI: spec_version is the version of the HTTP spec the server
    # implements (saltare 2.4, uvicorn 0.17.6 2.3).
    "asgi",
    # ASGI HTTP scope: "extensions" is optional, what the server supports.
    "extensions",
    # ASGI HTTP scope: "state", the lifespan state; optional ("if missing
    # the server does not support this feature"), uvicorn 0.17.6 predates it.
    "state",
}


def normal_body(resp: Response, scope_json: bool, scope_optional: bool) -> object:
    body = resp.body
    if dict(resp.headers).get("content-encoding") == "gzip" and resp.complete:
        # RFC 1952 2.3.1: the gzip header holds MTIME, the compression time.
        body = gzip.decompress(body)
    if scope_json and body[:1] == b"{":
        scope = json.loads(body)
        for key in ("server", "client"):
            # Each server listens on its own port; the client's port is
            # whatever the kernel picked for that connection.
            if isinstance(scope.get(key), list):
                scope[key] = [scope[key][0], "PORT"]
        if not scope_optional:
            for key in SCOPE_OPTIONAL:
                scope.pop(key, None)
        return scope
    return body


def normalise(ex: Exchange, case) -> dict:
    def body(resp):
        if case.server_answers and resp.status >= 400:
            # RFC 9110 15.5, 15.6: an error response SHOULD explain the
            # error; the wording (and so its length) is the server's.
            return "(server's explanation)"
        return normal_body(resp, case.scope_json, case.name == "scope-basic")

    return {
        "responses": [
            {
                "version": resp.version,
                # RFC 9112 4: the reason phrase is not significant.
                "status": resp.status,
                # /scope's length follows the optional keys (SCOPE_OPTIONAL).
                "headers": normal_headers(
                    resp, case.app_framing and not case.server_answers and not case.scope_json
                ),
                "body": body(resp),
                "complete": resp.complete,
            }
            for resp in ex.responses
        ],
        "closed": ex.closed,
        "error": ex.error,
    }
