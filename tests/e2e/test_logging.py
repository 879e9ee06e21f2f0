"""The error and access logs: a client or an app cannot forge a line, and a
log consumer that stops reading never stalls the server (base/log.h)."""

import json
import re
import os
import select
import signal
import socket
import subprocess
import threading
import time

from conftest import APPS, BIN, START_TIMEOUT, free_port, read_response


def wait_for_line(server, pred, timeout=10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = server.stderr()
        if any(pred(line) for line in log.splitlines()) or time.monotonic() > deadline:
            return log
        time.sleep(0.02)


def test_a_decoded_path_cannot_forge_an_error_log_line(serve):
    server = serve("log_app:app", log={"access": "stderr"})
    with server.connect() as s:
        s.sendall(
            b"GET /raise%0Asaltare[1]:%20info:%20forged%1b[2J HTTP/1.1\r\nHost: x\r\n"
            b"User-Agent: tab\there \xc2\x9b[31m\r\n\r\n"
        )
        status, _, _, _ = read_response(s.makefile("rb"))
    assert status == 500
    # The access line is written when the server ends the exchange, which
    # may be a moment after the client has the response: wait for it.
    # Its own access line: under sanitizers the fixture's readiness probe
    # (GET / HTTP/9.9) is logged before it.
    mine = lambda line: line.startswith("{") and '"path":"/raise' in line  # noqa: E731
    log = wait_for_line(server, mine)
    lines = log.splitlines()
    assert not any(line.startswith("saltare[1]") for line in lines), log
    (err,) = [line for line in lines if "exception in the ASGI app" in line]
    assert err.endswith(
        "error: GET /raise\\nsaltare[1]: info: forged\\x1b[2J: exception in the ASGI app"
    ), err
    assert "RuntimeError: log_app raised" in log
    (access,) = [json.loads(line) for line in lines if mine(line)]
    assert access["path"] == "/raise%0Asaltare[1]:%20info:%20forged%1b[2J"
    assert access["user_agent"] == "tab\there \x9b[31m"
    raw = [line for line in lines if mine(line)][0]
    assert "\\u0009" in raw and "\\u009b" in raw, raw


def test_a_traceback_is_escaped_and_cut_to_fit_the_log_buffer(serve):
    server = serve("log_app:app")
    with server.connect() as s:
        s.sendall(b"GET /raise-big HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _, _ = read_response(s.makefile("rb"))
    assert status == 500
    log = wait_for_line(server, lambda line: line.startswith("[cut: "))
    lines = log.splitlines()
    (tb,) = [line for line in lines if line.startswith("RuntimeError: big")]
    assert tb.startswith("RuntimeError: big\\x1b[2Jxxxx")  # the ESC byte is escaped
    assert "[cut: longer than the log buffer allows]" in lines
    assert len(log) < 64 * 1024


def test_a_lifespan_failure_message_is_escaped_not_lost(serve):
    server = serve("log_app:failing_lifespan", lifespan="on", ready=False)
    assert server.wait() == 3
    lines = server.stderr().splitlines()
    assert any(
        line.endswith("error: lifespan startup failed: db \\\\udcff down\\nsaltare[1]: info: forged")
        for line in lines
    ), lines
    assert not any(line.startswith("saltare[1]") for line in lines)


def get(s: socket.socket, f) -> int:
    s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body, _ = read_response(f)
    assert body == b"ok"
    return status


def test_a_stderr_pipe_nobody_reads_never_stalls_the_worker(tmp_path):
    port = free_port()
    config = {
        "app": {"target": "log_app:app", "path": [str(APPS)], "lifespan": "off"},
        "workers": 1,
        "listeners": [{"tcp": f"127.0.0.1:{port}"}],
        "log": {"access": "stderr"},
        "limits": {"max_keepalive_requests": 0},
    }
    path = tmp_path / "saltare.yaml"
    path.write_text(json.dumps(config))
    r, w = os.pipe()
    proc = subprocess.Popen(
        [BIN, "-c", str(path)], stdin=subprocess.DEVNULL, stdout=w, stderr=w
    )
    os.close(w)
    out = bytearray()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "did not start"
            try:
                s = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.01)
        # The listener accepts before the app is imported (seconds under
        # ASan), and nobody reads the log to see when a worker serves: the
        # first request may wait for that.
        s.settimeout(START_TIMEOUT)
        f = s.makefile("rb")
        assert get(s, f) == 200
        s.settimeout(10)
        # ~200 bytes of access log per request: 4000 requests are far more
        # than the pipe (64 KiB) and the log buffer (64 KiB) together hold.
        for _ in range(4000 - 1):
            assert get(s, f) == 200
        assert proc.poll() is None
        # Now read: the buffered lines arrive, then the report of the lost
        # ones once the buffer has drained (a request or the 1 s retry).
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                if select.select([r], [], [], 0.1)[0]:
                    chunk = os.read(r, 65536)
                    if not chunk:
                        return
                    out.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        deadline = time.monotonic() + 20
        while b"lines dropped (slow consumer)" not in out and time.monotonic() < deadline:
            assert get(s, f) == 200
            time.sleep(0.05)
        s.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        stop.set()
        t.join()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(r)
    text = out.decode()
    lines = text.splitlines()
    (report,) = [line for line in lines if "dropped" in line]
    assert re.match(r"saltare\[\d+\]: warning: log: ", report), report  # the worker's pid
    dropped = int(report.split("log: ")[1].split()[0])
    access = [json.loads(line) for line in lines if line.startswith("{")]  # whole lines only
    assert dropped > 0
    assert len(access) + dropped >= 4000
    assert all(a["status"] == 200 for a in access)
    assert all(line.startswith(("{", "saltare[")) for line in lines), text[-2000:]
