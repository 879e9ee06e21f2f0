"""SIGHUP reload by re-exec, respawns, crash loops and recycling, under load.

Each test owns an app module written into its tmp_path (so a reload can
load new code) and rewrites its own config. Clients count every failed
request. One allowance, from RFC 9112 section 9.3.1: a request that fails on a
*reused* keep-alive connection before any byte of a response arrived may be
retried once (the server may close an idle connection at any time; clients
and proxies retry such requests). Anything else is a failure.
"""

import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
from conftest import BIN, START_TIMEOUT, STOP_TIMEOUT, free_port, wait_for

APP = '''
import asyncio, os, sys
VERSION = {version!r}
{extra}

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await send({{"type": "lifespan.startup.complete"}})
            elif m["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    path = scope["path"]
    if path in ("/upload", "/stream", "/slow"):  # the test waits for this: in flight
        # one write: print() writes each piece on its own, and two workers'
        # pieces interleave in the shared log
        sys.stderr.write(path[1:] + " started in " + str(os.getpid()) + "\\n")
        sys.stderr.flush()
    if path == "/upload":  # reads the whole body, answers its length
        n = 0
        while True:
            m = await receive()
            n += len(m.get("body", b""))
            if not m.get("more_body"):
                break
        body = str(n).encode()
    elif path == "/stream":  # 20 chunks, 0.1 s apart
        await send({{"type": "http.response.start", "status": 200, "headers": []}})
        for i in range(20):
            await send({{"type": "http.response.body", "body": b"x" * 1000, "more_body": True}})
            await asyncio.sleep(0.1)
        await send({{"type": "http.response.body", "body": b""}})
        return
    elif path == "/slow":
        await asyncio.sleep(2)
        body = b"slow done"
    elif path == "/crash":
        os._exit(1)
    else:
        body = (VERSION + " " + str(os.getpid())).encode()
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": body}})
'''


def write_app(directory: pathlib.Path, version: str, extra: str = "") -> None:
    path = directory / "reload_app.py"
    path.write_text(APP.format(version=version, extra=extra))
    for cache in directory.glob("__pycache__/reload_app*"):
        cache.unlink()  # the same mtime second must not serve the old bytecode


def config_path(server) -> pathlib.Path:
    return server.log_path.with_suffix(".yaml")


def rewrite_config(server, **changes) -> None:
    path = config_path(server)
    config = json.loads(path.read_text())
    for key, value in changes.items():
        section, _, name = key.partition("__")
        config.setdefault(section, {})[name] = value
    path.write_text(json.dumps(config, indent=2))


def get(server, path: str = "/", timeout: float = 10) -> tuple[int, str, str]:
    """One request on a new connection: (status, Server header, body)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.getheader("Server", ""), r.read().decode()
    finally:
        conn.close()


# A reload starts a new image that imports the app: seconds, far more under ASan.
RELOAD_TIMEOUT = max(20.0, START_TIMEOUT)


def wait_log(server, pattern: str, mark: int = 0, timeout: float = RELOAD_TIMEOUT,
             count: int = 1):
    def seen():
        if server.proc.poll() is not None:
            raise AssertionError(f"saltare exited:\n{server.stderr()}")
        return len(re.findall(pattern, server.stderr_since(mark))) >= count

    wait_for(seen, timeout, f"no {pattern!r} in the log", lambda: f":\n{server.stderr()}")


class Load:
    """Client threads that keep requesting until stopped, counting failures."""

    def __init__(self, server, keepalive: int = 3, fresh: int = 2):
        self.server = server
        self.stop_event = threading.Event()
        self.ok = 0
        self.retried = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.keepalive) for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self.fresh) for _ in range(fresh)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(30)

    def record(self, ok: bool, what: str = "") -> None:
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.failures.append(what)

    def keepalive(self):
        conn, used = None, False
        while not self.stop_event.is_set():
            if conn is None:
                conn, used = http.client.HTTPConnection(self.server.host, self.server.port,
                                                        timeout=10), False
            try:
                conn.request("GET", "/")
                r = conn.getresponse()
                body = r.read()
                self.record(r.status == 200 and body, f"status {r.status}")
                used = True
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                conn = None
                if not used:
                    self.record(False, f"fresh keep-alive connection: {e!r}")
                else:
                    with self.lock:
                        self.retried += 1  # RFC 9112 9.3.1: retried on a new connection
            except Exception as e:  # noqa: BLE001 - every other error is a failure
                self.record(False, repr(e))
                conn = None
        if conn:
            conn.close()

    def fresh(self):
        while not self.stop_event.is_set():
            try:
                status, _, body = get(self.server)
                self.record(status == 200 and bool(body), f"status {status}")
            except Exception as e:  # noqa: BLE001
                self.record(False, repr(e))


def slow_upload(server, result: list, seconds: float = 2.0):
    """POST 20 pieces spread over `seconds`; the answer is the length."""
    with socket.create_connection((server.host, server.port), timeout=20) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n")
        for _ in range(20):
            s.sendall(b"u" * 1000)
            time.sleep(seconds / 20)
        data = b""
        while chunk := s.recv(65536):  # the answer ends with the connection (drain)
            data += chunk
            if data.endswith(b"\r\n0\r\n\r\n"):
                break
        result.append(data)


def stream_download(server, result: list):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
    conn.request("GET", "/stream")
    r = conn.getresponse()
    result.append((r.status, len(r.read())))
    conn.close()


def start(serve, tmp_path, reuseport: bool = False, **sections):
    write_app(tmp_path, "v0")
    sections.setdefault("workers", 2)
    sections.setdefault("http", {"server_header": "config-0"})
    # A fixed port: a `:0` listener is a new address to the next image.
    listener = {"tcp": f"127.0.0.1:{free_port()}", "reuseport": reuseport}
    server = serve("reload_app:app", lifespan="on", extra_path=[str(tmp_path)],
                   listener=listener, **sections)
    wait_log(server, r"\d workers? \[gen 1\]")  # every worker ready
    return server


def generation(server, n: int, mark: int) -> None:
    """Waits until generation n serves and the old one is gone."""
    wait_log(server, rf"reload: generation {n} ready", mark)
    wait_log(server, r"drained and exited", mark, count=len(server.worker_pids()) // 2 or 1)


# With `reuseport` the socket is still one socket shared by both generations
# (inherited, not bound again), so no accept queue is split and nothing relies
# on net.ipv4.tcp_migrate_req; the run with it checks exactly that.
@pytest.mark.parametrize("reuseport", [False, True])
def test_five_reloads_under_load_drop_nothing_and_serve_new_code_and_config(
    serve, tmp_path, reuseport
):
    server = start(serve, tmp_path, reuseport=reuseport, timeouts={"shutdown": "10s"})
    master = server.pid
    with Load(server) as load:
        for i in range(1, 6):
            write_app(tmp_path, f"v{i}")
            rewrite_config(server, http__server_header=f"config-{i}")
            uploads, streams = [], []
            inflight = [threading.Thread(target=slow_upload, args=(server, uploads)),
                        threading.Thread(target=stream_download, args=(server, streams))]
            mark = server.mark()
            for t in inflight:
                t.start()
            wait_log(server, r"upload started", mark)  # both are in flight in the old
            wait_log(server, r"stream started", mark)  # generation
            mark = server.mark()
            os.kill(master, signal.SIGHUP)
            wait_log(server, rf"reload: generation {i + 1} ready", mark)
            status, header, body = get(server)
            assert (status, header, body.split()[0]) == (200, f"config-{i}", f"v{i}")
            for t in inflight:
                t.join(30)
            assert uploads and uploads[0].startswith(b"HTTP/1.1 200"), uploads
            assert b"\r\n\r\n5\r\n20000\r\n0\r\n\r\n" in uploads[0], uploads
            assert streams == [(200, 20000)]
            wait_log(server, r"drained and exited", mark, count=2)
            assert server.pid == master and server.proc.poll() is None
            cmd = pathlib.Path(f"/proc/{master}/cmdline").read_bytes().split(b"\0")[0]
            assert cmd.decode().startswith(f"saltare: master [gen {i + 1}]")
    assert load.failures == [], load.failures[:5]
    assert load.ok > 100, load.ok
    assert len(server.worker_pids()) == 2


def test_a_bad_config_or_a_broken_app_leaves_the_old_generation_serving(serve, tmp_path):
    server = start(serve, tmp_path)
    path = config_path(server)
    good = path.read_text()
    path.write_text(good.replace('"workers": 2', '"workers": "many"'))
    mark = server.mark()
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, r"generation 1 keeps serving", mark)
    assert re.search(rf"{re.escape(path.name)}:\d+:\d+: workers: expected", server.stderr_since(mark))
    assert get(server)[2].startswith("v0")

    path.write_text(good)
    write_app(tmp_path, "v1", extra="raise RuntimeError('broken on purpose')")
    mark = server.mark()
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, r"reload failed: .*keep serving", mark)
    assert "broken on purpose" in server.stderr_since(mark)
    for _ in range(5):
        assert get(server)[2].startswith("v0")
    assert len(server.worker_pids()) == 2

    write_app(tmp_path, "v2")  # fixed: the next SIGHUP succeeds
    mark = server.mark()
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, r"reload: generation 3 ready", mark)
    assert get(server)[2].startswith("v2")


def test_a_lifespan_startup_failure_on_reload_keeps_the_old_generation(serve, tmp_path):
    server = start(serve, tmp_path, timeouts={"startup": "2s"})
    write_app(tmp_path, "v1", extra="import asyncio\nasyncio.get_event_loop()")
    (tmp_path / "reload_app.py").write_text(
        (tmp_path / "reload_app.py").read_text().replace(
            'await send({"type": "lifespan.startup.complete"})',
            "await asyncio.sleep(3600)"))
    mark = server.mark()
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, r"did not become ready within timeouts.startup", mark)
    wait_log(server, r"reload failed: .*keep serving", mark)
    assert get(server)[2].startswith("v0")


def test_a_binary_replaced_on_disk_is_picked_up(tmp_path):
    binary = tmp_path / "saltare"
    shutil.copy(BIN, binary)
    port = free_port()
    write_app(tmp_path, "v0")
    config = tmp_path / "s.yaml"
    config.write_text(json.dumps({
        "app": {"target": "reload_app:app", "path": [str(tmp_path)], "lifespan": "on"},
        "listeners": [{"tcp": f"127.0.0.1:{port}"}],
    }))
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(binary), "-c", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_for(lambda: "worker ready" in log.read_text(), RELOAD_TIMEOUT, "not serving",
                 lambda: log.read_text())
        new = tmp_path / "saltare.new"
        new.write_bytes(binary.read_bytes() + b"\0" * 64)  # another file, still the program
        new.chmod(0o755)
        os.replace(new, binary)
        assert os.readlink(f"/proc/{proc.pid}/exe").endswith("(deleted)")
        os.kill(proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload: generation 2 ready" in log.read_text(), RELOAD_TIMEOUT,
                 "no reload", lambda: log.read_text())
        assert os.readlink(f"/proc/{proc.pid}/exe") == str(binary)
        assert os.stat(f"/proc/{proc.pid}/exe").st_ino == binary.stat().st_ino
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read().startswith(b"v0")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(STOP_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_sigkilled_worker_is_respawned_while_the_others_serve(serve, tmp_path):
    server = start(serve, tmp_path)
    before = server.worker_pids()
    mark = server.mark()
    os.kill(before[0], signal.SIGKILL)
    for _ in range(20):  # the other worker serves meanwhile
        assert get(server)[0] == 200
    wait_log(server, r"worker \d \(pid %d\) was killed by signal 9.*respawning" % before[0], mark)
    respawned = wait_for(lambda: set(server.worker_pids()) - set(before) or None, 20,
                         "no respawned worker")
    (new,) = respawned
    wait_log(server, rf"saltare\[{new}\]: info: worker ready", mark)
    assert sorted(server.worker_pids()) == sorted([before[1], new])


def test_a_crash_loop_is_reported_while_survivors_serve(serve, tmp_path):
    server = start(serve, tmp_path, process={"crash_limit": 3, "crash_window": "1m"})
    mark = server.mark()
    crashes = 0
    while crashes < 3:  # a request may wait for a respawned worker (seconds under ASan)
        try:
            get(server, "/crash", timeout=30)
        except (http.client.RemoteDisconnected, ConnectionResetError):
            crashes += 1
    wait_log(server, r"crash loop: 3 worker crashes in the last 60 s", mark)
    wait_for(lambda: get(server)[0] == 200, 10, "nobody serves")


def test_sigterm_after_a_reload_lets_a_slow_request_finish(serve, tmp_path):
    server = start(serve, tmp_path)
    mark = server.mark()
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, r"reload: generation 2 ready", mark)
    result = []
    t = threading.Thread(target=lambda: result.append(get(server, "/slow")))
    t.start()
    wait_log(server, r"slow started", mark)  # in flight
    server.proc.send_signal(signal.SIGTERM)
    t.join(15)
    assert result and result[0][2] == "slow done"
    assert server.wait() == 0


def test_max_requests_recycling_under_load_drops_nothing(serve, tmp_path):
    server = start(serve, tmp_path, process={"max_requests": 60, "max_requests_jitter": 20})
    mark = server.mark()
    with Load(server, keepalive=2, fresh=2) as load:
        wait_log(server, r"worker \d replaced: pid \d+ ready, pid \d+ draining", mark, count=3,
                 timeout=40)
    assert load.failures == [], load.failures[:5]
    log = server.stderr_since(mark)
    assert "recycling worker" in log and "(process.max_requests)" in log
    assert len(server.worker_pids()) >= 2


def test_respawn_back_off_doubles_while_a_worker_keeps_crashing(serve, tmp_path):
    server = start(serve, tmp_path, workers=1)
    mark = server.mark()
    for delay in (100, 200, 400):  # each worker crashed before running healthily 10 s
        pid = server.worker_pid
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            get(server, "/crash", timeout=30)
        wait_log(server, rf"worker 1 \(pid {pid}\) exited with status 1; respawning in {delay} ms",
                 mark)
        wait_for(lambda: server.worker_pids() and server.worker_pids()[0] != pid, 20, "respawn")
        wait_log(server, rf"saltare\[{server.worker_pid}\]: info: worker ready", mark)


# An app module whose import hangs (app.preload: imported in the master).
HANG = "print('import started', file=sys.stderr, flush=True)\nimport time\ntime.sleep(3600)"


def test_a_preload_import_that_hangs_at_first_start_exits_3_after_timeouts_startup(
    serve, tmp_path
):
    write_app(tmp_path, "v0", extra=HANG)
    server = serve("reload_app:app", extra_path=[str(tmp_path)], ready=False, workers=2,
                   preload="on", timeouts={"startup": "2s", "shutdown": "10s"})
    assert server.proc.wait(60) == 3, server.stderr()
    log = server.stderr()
    assert "import started" in log
    assert "app import did not finish within timeouts.startup (2 s)" in log
    assert "TimeoutError" in log  # raised in the import: the traceback shows where it hung


def test_sigterm_during_a_hung_preload_import_at_first_start_stops_the_server(serve, tmp_path):
    write_app(tmp_path, "v0", extra=HANG)
    server = serve("reload_app:app", extra_path=[str(tmp_path)], ready=False, workers=2,
                   preload="on", timeouts={"startup": "120s", "shutdown": "10s"})
    wait_log(server, r"import started", timeout=60)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0, server.stderr()
    assert "SIGTERM during the app import: stopping" in server.stderr()


def test_a_preload_import_that_hangs_on_reload_fails_it_and_the_old_generation_serves(
    serve, tmp_path
):
    server = start(serve, tmp_path, timeouts={"startup": "2s", "shutdown": "10s"})
    old = sorted(server.worker_pids())
    write_app(tmp_path, "v1", extra=HANG)
    mark = server.mark()
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, r"import started", mark)
    assert get(server)[2].startswith("v0")  # served while the new image is stuck importing
    wait_log(server, r"reload failed: app import did not finish within timeouts\.startup "
                     r"\(2 s\); the 2 workers of the previous generation keep serving", mark)
    for _ in range(5):
        assert get(server)[2].startswith("v0")
    assert sorted(server.worker_pids()) == old

    # The master supervises again: a SIGHUP with fixed code succeeds.
    write_app(tmp_path, "v2")
    mark = server.mark()
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, r"reload: generation 3 ready", mark)
    assert get(server)[2].startswith("v2")


def test_sigterm_during_a_hung_preload_import_on_reload_stops_the_server(serve, tmp_path):
    server = start(serve, tmp_path, timeouts={"startup": "120s", "shutdown": "10s"})
    write_app(tmp_path, "v1", extra=HANG)
    mark = server.mark()
    os.kill(server.pid, signal.SIGHUP)
    wait_log(server, r"import started", mark)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(40) == 0, server.stderr()
    log = server.stderr_since(mark)
    assert "reload failed: the app import was interrupted by a stop signal" in log
    assert "stopping: draining 2 workers" in log
    assert len(re.findall(r"worker \d \[gen 1\] \(pid \d+\) exited with status 0", log)) == 2, log


def test_a_preload_import_stuck_in_c_code_at_first_start_is_given_up(serve, tmp_path):
    # pbkdf2 with a billion rounds: minutes in C code that never checks for signals.
    stuck = ("print('import started', file=sys.stderr, flush=True)\n"
             "import hashlib\nhashlib.pbkdf2_hmac('sha256', b'x', b'y', 10**9)")
    write_app(tmp_path, "v0", extra=stuck)
    server = serve("reload_app:app", extra_path=[str(tmp_path)], ready=False, workers=2,
                   preload="on", timeouts={"startup": "2s", "shutdown": "10s"})
    started = time.monotonic()
    assert server.proc.wait(90) == 3, server.stderr()
    assert time.monotonic() - started >= 10  # the deadline, then 10 s of grace
    assert ("the app import did not return 10 s after timeouts.startup; it is stuck in code "
            "that does not check for signals: exiting") in server.stderr()


def test_respawn_back_off_resets_after_a_worker_ran_healthily_for_10_s(serve, tmp_path):
    server = start(serve, tmp_path, workers=1)
    mark = server.mark()

    def crash_and_respawn(delay: int) -> None:
        pid = server.worker_pid
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            get(server, "/crash", timeout=30)
        wait_log(server, rf"worker 1 \(pid {pid}\) exited with status 1; respawning in {delay} ms",
                 mark)
        wait_for(lambda: server.worker_pids() and server.worker_pids()[0] != pid, 20, "respawn")
        wait_log(server, rf"saltare\[{server.worker_pid}\]: info: worker ready", mark)

    crash_and_respawn(100)
    crash_and_respawn(200)  # crashed again at once: the back-off grew
    time.sleep(12.5)  # the new worker has been ready over 10 s (2.5 s of margin)
    crash_and_respawn(100)  # back to the minimum
