"""Signals, disconnects, and the kinds of listeners."""

import os
import pathlib
import re
import signal
import time

import httpx
import pytest
from conftest import START_TIMEOUT, ipv6_available, read_head, read_response


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(serve):
    server = serve("stream_app:app")
    with server.connect() as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        status, headers, _ = read_head(f)  # the app is now inside its sleep
        assert status == 200
        server.proc.send_signal(signal.SIGTERM)
        body = f.read()  # chunked; the connection closes after the response
        f.close()  # (the core lingers until the client closes its side too)
    assert b"started;" in body and b"finished" in body and body.endswith(b"0\r\n\r\n")
    assert server.wait() == 0


def wait_for_log(server, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in server.stderr():
        assert server.proc.poll() is None, server.stderr()
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{server.stderr()}"
        time.sleep(0.01)


def test_shutdown_timeout_cancels_a_request_that_never_ends(serve):
    server = serve("stream_app:app", timeouts={"shutdown": "500ms"})
    with server.connect() as s:
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for_log(server, "hanging")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait() == 0
        assert time.monotonic() - started < 8  # 500 ms, not the default 10 s
        status, headers, _, _ = read_response(s.makefile("rb"))
    assert status == 500  # the cancelled request is answered, not just dropped
    assert headers["connection"] == "close"
    assert "shutdown timeout" in server.stderr()
    assert "Traceback" not in server.stderr()  # the cancellation is not an app error


def test_shutdown_timeout_cancels_a_request_whose_client_left(serve):
    server = serve("stream_app:app", timeouts={"shutdown": "500ms"})
    with server.connect() as s:
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for_log(server, "hanging")
    server.proc.send_signal(signal.SIGTERM)  # the app still sleeps, its client is gone
    assert server.wait() == 0
    log = server.stderr()
    assert "shutdown timeout" in log
    assert "Traceback" not in log and "failed" not in log, log


def test_second_signal_exits_at_once_with_status_1(serve):
    server = serve("stream_app:app", timeouts={"shutdown": "30s"})
    with server.connect() as s:
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for_log(server, "hanging")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        wait_for_log(server, "draining")
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait() == 1
        assert time.monotonic() - started < 8  # not the 30 s shutdown timeout


def test_sigterm_during_lifespan_startup_shuts_down_cleanly(serve):
    server = serve("slow_startup_app:app", lifespan="on", ready=False)
    wait_for_log(server, "starting up")
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait() == 0
    assert "shut down cleanly" in server.stderr()


def test_sigterm_when_idle_exits_0_promptly(serve):
    server = serve("scope_app:app")
    assert httpx.get(server.url + "/").status_code == 200
    assert server.stop() == 0


def test_app_sees_http_disconnect_when_the_client_goes_away(serve):
    server = serve("disconnect_app:app")
    with server.connect() as s:
        s.sendall(b"POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    r = httpx.get(server.url + "/seen", timeout=10)
    assert r.text == "disconnect seen"


def test_unix_socket_listener(serve, tmp_path):
    path = str(tmp_path / "saltare.sock")
    serve("scope_app:app", listener={"unix": path})
    transport = httpx.HTTPTransport(uds=path)
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        scope = client.get("/over-unix").json()
    assert scope["path"] == "/over-unix"
    assert scope["client"] is None
    assert scope["server"] == [path, None]


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_listener(serve):
    server = serve("scope_app:app", listener={"tcp": "[::1]:0"})
    assert server.url == f"http://[::1]:{server.port}" and server.port > 0
    scope = httpx.get(server.url + "/v6").json()
    assert scope["client"][0] == "::1"
    assert scope["server"] == ["::1", server.port]


def test_asyncio_loop_can_be_chosen(serve):
    server = serve("scope_app:app", loop="asyncio")
    assert httpx.get(server.url + "/").status_code == 200


def test_app_venv_site_packages_are_importable(serve, tmp_path):
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "saltare_venv_probe.py").write_text('VALUE = "imported from the venv"\n')
    server = serve("venv_app:app", venv=str(tmp_path / "venv"))
    assert httpx.get(server.url + "/").text == "imported from the venv"


def test_without_the_venv_the_same_app_cannot_start(serve):
    server = serve("venv_app:app", ready=False)
    assert server.wait() == 3
    assert "No module named 'saltare_venv_probe'" in server.stderr()


@pytest.fixture
def no_uvloop(tmp_path):
    """A directory whose uvloop module cannot be imported (it shadows the real one)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "uvloop.py").write_text('raise ImportError("uvloop hidden by the test")\n')
    return [str(shadow)]


def test_loop_auto_falls_back_to_asyncio_without_uvloop(serve, no_uvloop):
    server = serve("scope_app:app", loop="auto", extra_path=no_uvloop)
    assert httpx.get(server.url + "/").status_code == 200


def test_loop_uvloop_without_uvloop_exits_3(serve, no_uvloop):
    server = serve("scope_app:app", loop="uvloop", extra_path=no_uvloop, ready=False)
    assert server.wait() == 3
    assert "uvloop hidden by the test" in server.stderr()


@pytest.mark.parametrize("workers", [1, 2])
def test_unix_socket_file_is_removed_on_exit(serve, tmp_path, workers):
    path = tmp_path / f"w{workers}.sock"
    server = serve("scope_app:app", listener={"unix": str(path)}, workers=workers)
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        assert client.get("/").status_code == 200
    assert path.exists()
    assert server.stop() == 0
    assert not path.exists()


def test_sigterm_with_two_workers_finishes_the_request_in_flight(serve):
    server = serve("stream_app:app", workers=2)
    with server.connect() as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        status, _, _ = read_head(f)  # a worker is now inside the app's sleep
        assert status == 200
        server.proc.send_signal(signal.SIGTERM)  # to the master only
        body = f.read()
        f.close()
    assert b"started;" in body and b"finished" in body and body.endswith(b"0\r\n\r\n")
    assert server.wait() == 0
    with pytest.raises(OSError):
        server.connect()  # nobody listens any more


def test_sigterm_while_workers_are_still_starting_is_not_lost(serve):
    server = serve("slow_fork_app:app", lifespan="off", workers=2, ready=False)
    server.wait_ready()  # the listener: not the workers, which are still starting
    wait_for_log(server, "forked")  # the workers are inside their pause
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait() == 0  # a lost signal: it would run on, past this deadline


def test_workers_do_not_outlive_a_killed_master(serve):
    server = serve("lifespan_app:app", lifespan="on", workers=2)
    children = pathlib.Path(f"/proc/{server.pid}/task/{server.pid}/children")
    deadline = time.monotonic() + START_TIMEOUT
    while len(set(re.findall(r"lifespan startup ran in pid (\d+)", server.stderr()))) < 2:
        assert time.monotonic() < deadline, server.stderr()
        time.sleep(0.01)
    workers = [int(p) for p in children.read_text().split()]
    assert len(workers) == 2
    server.proc.kill()
    assert server.wait() == -signal.SIGKILL
    deadline = time.monotonic() + 10
    try:
        while any(pathlib.Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "orphaned workers still running"
            time.sleep(0.02)
    except AssertionError:
        for pid in workers:  # a failure must not leave them behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        raise
    assert server.stderr().count("lifespan shutdown ran") == 2  # they drained


# ---- the master and its workers (proc_app) ---------------------------------


def cmdline(pid: int) -> str:
    return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode()


@pytest.mark.parametrize("workers", [1, 2])  # 2: the app imported in the master (preload)
def test_a_write_to_a_closed_pipe_raises_in_the_app_and_the_worker_lives(serve, workers):
    server = serve("proc_app:app", lifespan="on", workers=workers)
    wait_for_log(server, "workers [gen 1]" if workers > 1 else "1 worker [gen 1]")
    before = sorted(server.worker_pids())
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for _ in range(workers * 2):
            assert c.get("/epipe").text == "BrokenPipeError"  # not killed by SIGPIPE
    assert sorted(server.worker_pids()) == before
    assert "was killed by signal" not in server.stderr()


def test_one_worker_still_has_a_master_with_titles(serve):
    server = serve("proc_app:app", lifespan="on")
    server.wait_serving()
    worker = server.worker_pid
    assert worker != server.pid
    assert httpx.get(server.url + "/pid").text == str(worker)
    assert cmdline(server.pid).startswith("saltare: master [gen 1]")
    assert cmdline(worker).startswith("saltare: worker 1 [gen 1]")
    assert server.stop() == 0


def test_sigterm_during_the_app_import_with_one_worker_exits_0(serve, monkeypatch):
    monkeypatch.setenv("PROC_IMPORT_SLEEP", "1.5")
    server = serve("proc_app:app", lifespan="on", ready=False)
    wait_for_log(server, "proc_app imported")  # inside the import's sleep
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait() == 0, server.stderr()


def test_second_signal_kills_workers_even_when_the_app_blocks_its_loop(serve):
    server = serve("proc_app:app", lifespan="on")
    server.wait_serving()
    with server.connect() as s:
        s.sendall(b"GET /block?30 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for_log(server, "blocking in pid")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        wait_for_log(server, "stopping: draining 1 worker")
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait() == 1
    assert time.monotonic() - started < 10  # not the 30 s the app blocks
    assert "second signal: killing 1 worker" in server.stderr()


def test_a_hung_lifespan_startup_is_bounded_by_timeouts_startup(serve, monkeypatch):
    monkeypatch.setenv("PROC_STARTUP", "hang")
    server = serve("proc_app:app", lifespan="on", ready=False, timeouts={"startup": "1s"})
    assert server.wait() == 3
    log = server.stderr()
    assert "did not become ready within timeouts.startup (1 s)" in log
    assert "serving proc_app:app" not in log  # "serving" only after startup


def test_one_sigterm_stops_a_hung_startup(serve, monkeypatch):
    monkeypatch.setenv("PROC_STARTUP", "hang")
    server = serve("proc_app:app", lifespan="on", ready=False,
                   timeouts={"startup": "1h", "shutdown": "1s"})
    wait_for_log(server, "startup in pid")
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait(timeout=20) != 0  # killed after timeouts.shutdown + grace
    assert "killing 1 worker" in server.stderr()


def test_new_connections_are_refused_at_once_while_draining(serve):
    server = serve("proc_app:app", lifespan="on", workers=2)
    server.wait_serving()
    with server.connect() as s:
        s.sendall(b"GET /slow?3 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for_log(server, "slow request in pid")
        server.proc.send_signal(signal.SIGTERM)
        wait_for_log(server, "stopping: draining")
        deadline = time.monotonic() + 5
        while True:  # every process lets go of the socket within moments
            try:
                server.connect().close()
            except ConnectionRefusedError:
                break
            assert time.monotonic() < deadline, "still accepting while draining"
            time.sleep(0.05)
        assert read_response(s.makefile("rb"))[2] == b"slow done"  # in flight: finished
    assert server.wait() == 0


def test_preload_imports_once_in_the_master(serve):
    server = serve("proc_app:app", lifespan="on", workers=2)
    server.wait_serving()
    imported = re.findall(r"proc_app imported in pid (\d+)", server.stderr())
    assert imported == [str(server.pid)]


def test_preload_off_imports_in_each_worker(serve):
    server = serve("proc_app:app", lifespan="on", workers=2, preload="off")
    deadline = time.monotonic() + 20
    while len(re.findall(r"startup in pid", server.stderr())) < 2:
        assert time.monotonic() < deadline, server.stderr()
        time.sleep(0.05)
    imported = set(re.findall(r"proc_app imported in pid (\d+)", server.stderr()))
    assert imported == {str(p) for p in server.worker_pids()}


def test_sigttin_and_sigttou_add_and_remove_a_worker(serve):
    server = serve("proc_app:app", lifespan="on", workers=1)
    server.wait_serving()
    mark = server.mark()
    server.proc.send_signal(signal.SIGTTIN)
    deadline = time.monotonic() + 20
    while len(server.worker_pids()) != 2 or "worker ready" not in server.stderr_since(mark):
        assert time.monotonic() < deadline, server.stderr()
        time.sleep(0.05)
    assert "SIGTTIN: 2 workers" in server.stderr()
    server.proc.send_signal(signal.SIGTTOU)
    while len(server.worker_pids()) != 1:
        assert time.monotonic() < deadline, server.stderr()
        time.sleep(0.05)
    assert "SIGTTOU: 1 worker" in server.stderr()
    assert httpx.get(server.url + "/").status_code == 200


def test_max_rss_replaces_a_worker_that_stays_over_it(serve):
    server = serve("proc_app:app", lifespan="on", workers=1, process={"max_rss": "120MiB"})
    server.wait_serving()
    before = server.worker_pid
    mark = server.mark()
    assert httpx.get(server.url + "/grow?160", timeout=10).text == "grown"
    deadline = time.monotonic() + 20
    while f"pid {before} draining (process.max_rss)" not in server.stderr_since(mark):
        assert time.monotonic() < deadline, server.stderr()
        time.sleep(0.05)
    log = server.stderr_since(mark)
    assert re.search(rf"worker 1 \(pid {before}\) uses \d+ KiB, over process.max_rss for 3", log)
    while f"(pid {before}) drained and exited" not in server.stderr_since(mark):
        assert time.monotonic() < deadline, server.stderr()
        time.sleep(0.05)
    assert httpx.get(server.url + "/pid").text != str(before)  # the replacement serves
