"""Shared fixtures for the end-to-end tests: the real binary, real clients.

`serve(target, ...)` writes a YAML config into the test's tmp_path, starts
`saltare -c FILE.yaml`, waits until the listener accepts connections and
returns a `Server`. At teardown every server still running gets SIGTERM and
must exit 0. `serve_module` does the same for a server a whole module shares.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = pathlib.Path(__file__).resolve().parent / "apps"
BIN = os.environ.get("SALTARE_BIN", str(ROOT / "bazel-bin" / "saltare"))
START_TIMEOUT = 15.0  # seconds; FastAPI imports take a while on a busy CI box
STOP_TIMEOUT = 15.0
# app.loop for every test that does not choose one: SALTARE_E2E_LOOP=asyncio
# runs the suite on the stdlib loop instead of uvloop.
DEFAULT_LOOP = os.environ.get("SALTARE_E2E_LOOP", "auto")


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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
        """Resident set size of the (single-worker) server process."""
        for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
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

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"saltare exited with {self.proc.returncode}:\n{self.stderr()}"
                )
            try:
                self.connect().close()
                return
            except OSError:
                time.sleep(0.01)  # the listener is not bound yet: poll again
        raise AssertionError(f"saltare did not listen in {START_TIMEOUT}s:\n{self.stderr()}")


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
        **sections,
    ) -> Server:
        host = port = uds = None
        if listener is None:
            host, port = "127.0.0.1", free_port()
            listener = {"tcp": f"{host}:{port}"}
        elif "unix" in listener:
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
        self.started.append(server)
        if ready:
            server.wait_ready()
        return server

    def stop_all(self) -> None:
        for server in self.started:
            if server.proc.poll() is None:
                code = server.stop()
                assert code == 0, f"exit status {code} after SIGTERM:\n{server.stderr()}"


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
