"""Shared fixtures for the end-to-end tests: the real binary, real clients.

`serve(target, ...)` writes a YAML config into the test's tmp_path, starts
`saltare -c FILE.yaml`, waits until it is ready and returns a `Server`. At
teardown every server still running gets SIGTERM and must exit 0.
`serve_module` does the same for a server a whole module shares.

For tests that add scenarios (use these, not a port of your own):

- Ports: by default a server listens on `127.0.0.1:0`; any TCP listener
  given with port 0 (`listener={"tcp": "[::1]:0"}`) works the same way. The
  kernel picks the port, saltare logs `listening on HOST:PORT`, and `serve`
  reads that line: `server.port` and `server.url` are the real ones. There is
  no pick-a-free-port-then-bind race. A fixed port or a Unix socket is
  waited for by connecting until it accepts (with a deadline). Where a test
  needs a fixed port (reloads, systemd, haproxy), `free_port()` picks one
  outside the kernel's ephemeral range.
- `serve` returns once a worker serves (`server.wait_serving()`: its
  "worker ready" line), not just once the listener accepts: the app's import
  would otherwise eat into the first request's timeout.
- `serve(..., ready=False)` returns at once, for servers that must fail to
  start (`server.wait()` returns the exit status) or that a test catches
  while they start (`server.wait_ready()` waits for the listener alone).
- `server.stderr()` is everything the server printed. `server.mark()` and
  `server.stderr_since(mark)` give the lines printed after a point, so a test
  asserts on its own lines, not on those of a module-shared server's earlier
  tests; `wait_for_output(server, pattern)` waits (with a deadline) until a
  line appears. The same applies to an access log file: `lines_after()`.
- What another process does lands a moment after what the test saw: the
  master's lines ("serving ... on", "generation N ready"), a worker's line
  or counter for an exchange whose response the client already has,
  access-log lines, metrics. Wait for it (`server.wait_log`,
  `wait_for_output`, `wait_for` with a deadline of seconds), never assert it
  at once; and instead of sleeping until a request is "in flight", have the
  app print a line and wait for that.
- The event loop: SALTARE_E2E_LOOP=asyncio|uvloop|auto (default auto: uvloop
  when importable) is the `app.loop` of every server whose test does not
  choose one; tools/dev.sh runs the suite with both.
- At teardown every server's output must hold no ASan, LSan or UBSan
  report (checked for every build, so a report fails the test that caused it).
- `SANITIZED` is true against an ASan build (or valgrind, with
  SALTARE_E2E_SANITIZED=1): skip only what it makes
  meaningless (RSS bounds), nothing else.
- `read_head`, `read_chunked`, `read_response`: raw HTTP/1.1 over a socket.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = pathlib.Path(__file__).resolve().parent / "apps"
BIN = os.environ.get("SALTARE_BIN", str(ROOT / "bazel-bin" / "saltare"))
# An ASan build (tools/dev.sh runs the suite against one too), or the binary
# under valgrind (tools/leakcheck.sh sets SALTARE_E2E_SANITIZED=1): their
# allocators make RSS figures meaningless, so memory bounds are not asserted
# there; everything else is.
SANITIZED = os.environ.get("SALTARE_E2E_SANITIZED") == "1" or "libasan" in subprocess.run(
    ["ldd", BIN], capture_output=True, text=True, check=False
).stdout
SANITIZER_REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: ")
# seconds; FastAPI imports take a while on a busy CI box, far longer under ASan
START_TIMEOUT = 60.0 if SANITIZED else 15.0
# LeakSanitizer's check at each process's exit takes seconds more there.
STOP_TIMEOUT = 60.0 if SANITIZED else 15.0
# app.loop for every test that does not choose one: SALTARE_E2E_LOOP=asyncio
# runs the suite on the stdlib loop instead of uvloop.
DEFAULT_LOOP = os.environ.get("SALTARE_E2E_LOOP", "auto")
if DEFAULT_LOOP not in ("auto", "asyncio", "uvloop"):
    raise pytest.UsageError(f"SALTARE_E2E_LOOP={DEFAULT_LOOP!r}: expected auto, asyncio or uvloop")


def _ephemeral_range() -> tuple[int, int]:
    try:
        text = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low, high = map(int, text.split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago, for a test that needs a fixed one
    (a reload keeps its address; systemd, haproxy and uvicorn bind it
    themselves). Prefer port 0 wherever saltare binds alone.

    Between this check and the real bind another process may take the port.
    The kernel hands out ports of the ephemeral range to every bind to port 0
    (each server of a parallel test lane) and every outgoing connection, so
    a port from that range can go within milliseconds on a busy machine. This
    one is picked at random outside it: only a process that asks for that
    very number can take it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, high = _ephemeral_range()
    candidates = [*range(20000, low), *range(high + 1, 65536)]
    rng = random.SystemRandom()
    for _ in range(200 if candidates else 0):
        port = rng.choice(candidates)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))  # no SO_REUSEADDR: a TIME_WAIT use counts as taken
            except OSError:
                continue
            return port
    with socket.socket(family, socket.SOCK_STREAM) as s:  # no room outside the range
        s.bind((host, 0))
        return s.getsockname()[1]


WORKER_READY = "worker ready: lifespan startup done, serving"
READY_LINE = re.compile(r"listening on (\[[^\]]*\]|[^\s:]+):(\d+)$", re.M)


def wait_for(condition, timeout: float, what: str, on_fail=lambda: ""):
    """Polls `condition()` until it returns a true value (returned) or the
    deadline passes (AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s{on_fail()}")
        time.sleep(0.01)


def lines_after(path: pathlib.Path, mark: int) -> list[str]:
    """Non-empty lines of a file from byte offset `mark` (see Server.mark)."""
    with open(path, "rb") as f:
        f.seek(mark)
        return [line for line in f.read().decode(errors="replace").splitlines() if line]


def wait_for_output(server, pattern: str, mark: int = 0, timeout: float = 10.0) -> re.Match:
    """Waits until the server's output after `mark` matches `pattern` (re)."""
    rx = re.compile(pattern, re.M)
    return wait_for(
        lambda: rx.search(server.stderr_since(mark)),
        timeout,
        f"no output matching {pattern!r}",
        lambda: f":\n{server.stderr()}",
    )

def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Server:
    def __init__(self, proc, log_path, *, host=None, port=None, uds=None):
        self.proc = proc
        self.log_path = log_path
        self.host, self.port, self.uds = host, port, uds
        self.probe = False  # wait_serving: send a request instead of reading the log
        if uds:
            self.url = "http://localhost"
        elif host and ":" in host:
            self.url = f"http://[{host}]:{port}"
        else:
            self.url = f"http://{host}:{port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The master's children: its worker processes (there is always a master)."""
        children = pathlib.Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(p) for p in children.read_text().split()]

    @property
    def worker_pid(self) -> int:
        """The one worker of a `workers: 1` server, once it is running."""
        pids = wait_for(lambda: self.worker_pids() or None, START_TIMEOUT, "no worker process")
        assert len(pids) == 1, pids
        return pids[0]

    def mark(self, path: pathlib.Path | None = None) -> int:
        """The current end of the server's output (or of the file at `path`,
        e.g. an access log): pass it to stderr_since / lines_after."""
        path = path or self.log_path
        return path.stat().st_size if path.exists() else 0

    def stderr_since(self, mark: int) -> str:
        return "\n".join(lines_after(self.log_path, mark))

    def wait_log(self, text: str, timeout: float = 10) -> str:
        """Waits until `text` is in the server's output and returns that
        output. A line another process writes (the master, or a worker after
        it closed the connection the test watched) may land a moment after
        what the test observed: assert on it through this, not at once."""
        def seen():
            out = self.stderr()
            return out if text in out else None

        return wait_for(seen, timeout, f"{text!r} never logged", lambda: f":\n{self.stderr()}")

    def connect(self) -> socket.socket:
        """A raw client socket to the listener."""
        if self.uds:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.uds)
        else:
            s = socket.create_connection((self.host, self.port))
        s.settimeout(10)
        return s

    def rss_kib(self) -> int:
        """Resident set size of the worker of a `workers: 1` server (the
        process that serves; the master only supervises)."""
        for line in pathlib.Path(f"/proc/{self.worker_pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"saltare did not exit in {timeout}s:\n{self.stderr()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait()

    def _exited(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"saltare exited with {self.proc.returncode}:\n{self.stderr()}")
        return False

    def wait_ready(self) -> None:
        """Port 0: waits for the ready line and takes the port from it. A
        fixed port or a Unix socket: connects until the listener accepts."""

        def exited():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"saltare exited with {self.proc.returncode}:\n{self.stderr()}"
                )

        if self.port == 0:

            def bound_port():
                exited()
                m = READY_LINE.search(self.stderr())
                return m and int(m.group(2))

            self.port = wait_for(
                bound_port, START_TIMEOUT, "no 'listening on' line", lambda: f":\n{self.stderr()}"
            )
            self.url = self.url.rpartition(":")[0] + f":{self.port}"
            return

        def accepts():
            exited()
            try:
                self.connect().close()
                return True
            except OSError:
                return False  # the listener is not bound yet: poll again

        wait_for(accepts, START_TIMEOUT, "saltare did not listen", lambda: f":\n{self.stderr()}")


    def wait_serving(self, timeout: float = START_TIMEOUT, tls: bool = False) -> None:
        """Returns once a worker finished lifespan startup and serves (the
        listener alone, which wait_ready waits for, accepts into the backlog
        before the app is imported). Waits for the worker's "worker ready"
        log line, so it sends nothing (no access-log line, no bytes a PROXY
        protocol listener would refuse). With `probe` set (the error log is
        not on stderr at info level), sends one request the core answers
        itself instead (HTTP/9.9: 505; `tls`: over TLS, not verified).
        For tests that time something from the moment they connect."""
        if not self.probe:
            wait_for(
                lambda: WORKER_READY in self.stderr() or self._exited(),
                timeout,
                "no 'worker ready' line",
                lambda: f":\n{self.stderr()}",
            )
            return
        import ssl

        with self.connect() as raw:
            raw.settimeout(timeout)
            s = raw
            try:
                if tls:
                    ctx = ssl.create_default_context()
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                    s = ctx.wrap_socket(raw)
                s.sendall(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n")
                with s.makefile("rb") as f:
                    status = read_head(f)[0]
            except ssl.SSLError:
                if tls:  # a TLS alert (e.g. no client certificate): a worker answered
                    return
                raise
        assert status == 505, status


class Launcher:
    """Starts servers from YAML written into `directory`; stop_all() at the end."""

    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.started: list[Server] = []

    def __call__(self, *args, **kwargs) -> Server:
        return self.start(*args, **kwargs)

    def start(
        self,
        target: str,
        *,
        lifespan: str = "auto",
        loop: str = DEFAULT_LOOP,
        listener: dict | None = None,
        venv: str | None = None,
        extra_path: list[str] = (),
        ready: bool = True,
        app_options: dict | None = None,  # more app.* keys (root_path...)
        preload: str | None = None,
        **sections,
    ) -> Server:
        host = port = uds = None
        if listener is None:
            listener = {"tcp": "127.0.0.1:0"}
        if "unix" in listener:
            uds = listener["unix"]
        else:
            addr = listener["tcp"]
            host, _, port = addr.rpartition(":")
            host, port = host.strip("[]"), int(port)
        config = {
            "app": {
                "target": target,
                "path": [*extra_path, str(APPS)],
                "lifespan": lifespan,
                "loop": loop,
                "venv": venv,
                **(app_options or {}),
                **({"preload": preload} if preload else {}),
            },
            "workers": 1,
            "listeners": [listener],
            "timeouts": {"shutdown": "10s"},
            **sections,
        }
        path = self.directory / f"saltare-{len(self.started)}.yaml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        log_path = self.directory / f"saltare-{len(self.started)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [BIN, "-c", str(path)],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = Server(proc, log_path, host=host, port=port, uds=uds)
        log = sections.get("log") or {}
        server.probe = log.get("error", "stderr") != "stderr" or log.get("level") in (
            "warning",
            "error",
        )
        self.started.append(server)
        if ready:
            server.wait_ready()
            # The listener accepts before the app is imported, which takes
            # seconds on a busy box (FastAPI, Starlette; far longer under
            # ASan): a test's first request must not spend its own timeout
            # on that, nor a clock start before it.
            server.wait_serving(tls="tls" in listener)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            if server.proc.poll() is None:
                code = server.stop()
                assert code == 0, f"exit status {code} after SIGTERM:\n{server.stderr()}"
            # Every server, however it ended: a worker's report does not
            # always change the master's exit status.
            report = SANITIZER_REPORT.search(server.stderr())
            assert report is None, f"sanitizer report:\n{server.stderr()}"


@pytest.fixture
def serve(tmp_path):
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def serve_module(tmp_path_factory):
    """Like `serve`, for a server shared by every test of a module."""
    launcher = Launcher(tmp_path_factory.mktemp("saltare"))
    yield launcher
    launcher.stop_all()


# ---- raw HTTP/1.1 helpers -------------------------------------------------


def read_head(f) -> tuple[int, dict[str, str], list[tuple[str, str]]]:
    """Reads a status line and headers from a socket file."""
    line = f.readline()
    assert line, "connection closed before a response"
    parts = line.decode("latin-1").split(" ", 2)
    status = int(parts[1])
    fields = []
    while True:
        line = f.readline()
        assert line, "connection closed inside the response head"
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        fields.append((name.strip().lower(), value.strip()))
    return status, dict(fields), fields


def read_chunked(f) -> tuple[bytes, list[tuple[str, str]]]:
    body = b""
    while True:
        size = int(f.readline().split(b";")[0], 16)
        if size == 0:
            break
        body += f.read(size)
        assert f.read(2) == b"\r\n"
    trailers = []
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        trailers.append((name.strip().lower(), value.strip()))
    return body, trailers


def read_response(f, *, head_request: bool = False):
    """Reads one whole response: (status, headers, body, trailers)."""
    status, headers, _ = read_head(f)
    if head_request or status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", []
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, trailers = read_chunked(f)
        return status, headers, body, trailers
    if "content-length" in headers:
        return status, headers, f.read(int(headers["content-length"])), []
    return status, headers, f.read(), []
