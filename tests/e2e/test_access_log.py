"""Access-log formats (json, combined, custom; time formats), what core
errors log, and the header timeout's 408 on a partial head."""

import datetime
import json
import pathlib
import re
import select
import time

import pytest

from conftest import lines_after, read_response, wait_for

# Apache/nginx combined, as GoAccess's COMBINED and fail2ban's filters parse it.
COMBINED = re.compile(
    r'^(?P<host>\S+) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"(?P<request>[^"\\]*(?:\\.[^"\\]*)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>[^"\\]*(?:\\.[^"\\]*)*)" "(?P<agent>[^"\\]*(?:\\.[^"\\]*)*)"$'
)


def request(server, raw):
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(raw)
        return read_response(f)


def logged(path, mark, count):
    wait_for(lambda: len(lines_after(path, mark)) >= count, 10, f"{count} access lines",
             lambda: f": {lines_after(path, mark)}")
    return lines_after(path, mark)


@pytest.fixture
def logged_server(serve, tmp_path):
    path = tmp_path / "access.log"

    def start(**log):
        server = serve("scope_app:app", log={"access": str(path), **log})
        return server, path

    return start


def test_json_fields_and_rfc3339_time(logged_server):
    server, path = logged_server()
    before = datetime.datetime.now(datetime.timezone.utc)
    status, _, _, _ = request(
        server,
        b"POST /items?id=7 HTTP/1.1\r\nHost: x\r\nUser-Agent: t/1\r\nReferer: http://r.test/\r\n"
        b"Content-Length: 5\r\n\r\nhello",
    )
    assert status == 200
    (entry,) = [json.loads(line) for line in logged(path, 0, 1)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    t = datetime.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    assert before - datetime.timedelta(seconds=1) <= t <= before + datetime.timedelta(seconds=30)
    assert entry["client"].startswith("127.0.0.1:")
    assert (entry["method"], entry["path"], entry["query"]) == ("POST", "/items", "id=7")
    assert entry["status"] == 200
    assert entry["bytes_in"] == 5
    assert entry["bytes_out"] > 0
    assert 0 <= entry["duration"] < 30
    assert (entry["user_agent"], entry["referer"]) == ("t/1", "http://r.test/")
    assert entry["listener"].startswith("127.0.0.1:")
    assert entry["pid"] == server.worker_pid  # the worker, not the master
    assert entry["tls"] is None


def test_unix_time_format(logged_server):
    server, path = logged_server(time_format="unix")
    now = time.time()
    request(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    (entry,) = [json.loads(line) for line in logged(path, 0, 1)]
    assert isinstance(entry["time"], float)
    assert abs(entry["time"] - now) < 30
    assert (entry["query"], entry["referer"], entry["user_agent"]) == (None, None, None)


def test_combined_format(logged_server):
    server, path = logged_server(access_format="combined")
    request(server, b'GET /a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: ua "q"\r\nReferer: http://r/\r\n\r\n')
    request(server, b"GET /plain HTTP/1.0\r\n\r\n")
    lines = logged(path, 0, 2)
    m = COMBINED.match(lines[0])
    assert m, lines[0]
    assert m["host"] == "127.0.0.1"
    assert m["request"] == "GET /a?b=1 HTTP/1.1"
    assert m["status"] == "200" and int(m["bytes"]) > 0
    assert m["referer"] == "http://r/"
    assert m["agent"] == 'ua \\"q\\"'
    datetime.datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z")
    m = COMBINED.match(lines[1])
    assert m, lines[1]
    assert (m["request"], m["referer"], m["agent"]) == ("GET /plain HTTP/1.0", "-", "-")


def test_custom_template(logged_server):
    server, path = logged_server(
        access_format="custom", access_template="$client|$method|$path|$query|$status|$protocol|$$")
    request(server, b"GET /t?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    (line,) = logged(path, 0, 1)
    client, method, p, query, status, proto, dollar = line.split("|")
    assert client.startswith("127.0.0.1:")
    assert (method, p, query, status, proto, dollar) == ("GET", "/t", "x=1", "200", "HTTP/1.1", "$")


def test_custom_needs_a_template_and_known_fields(tmp_path):
    import subprocess

    from conftest import BIN

    cfg = tmp_path / "c.yaml"
    cfg.write_text('app: {target: "m:app"}\nlog:\n  access_format: custom\n')
    r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 78
    assert 'log.access_template: needs "access_template"' in r.stderr
    cfg.write_text('app: {target: "m:app"}\nlog:\n  access_format: custom\n'
                   '  access_template: "$client $bogus"\n')
    r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 78
    assert 'unknown field "$bogus"' in r.stderr


@pytest.mark.parametrize(
    "raw, status, method, path",
    [
        (b"GET /nohost HTTP/1.1\r\n\r\n", 400, "GET", "/nohost"),
        (b"GET /big HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431, "GET", "/big"),
        (b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413, "POST", "/up"),
        (b"\x01\x02 garbage\r\n\r\n", 400, "", ""),
    ],
)
def test_core_errors_log_method_and_path_when_read(logged_server, raw, status, method, path):
    server, log = logged_server()
    got, _, _, _ = request(server, raw)
    assert got == status
    (entry,) = [json.loads(line) for line in logged(log, 0, 1)]
    assert (entry["status"], entry["method"], entry["path"]) == (status, method, path)


def test_header_timeout_answers_408_to_a_partial_head(serve, tmp_path):
    path = tmp_path / "access.log"
    server = serve("scope_app:app", timeouts={"header": "1s"}, log={"access": str(path)})
    with server.connect() as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        assert select.select([s], [], [], 10)[0], "no answer within 10 s"
        with s.makefile("rb") as f:
            status, headers, _, _ = read_response(f)
            assert status == 408
            assert headers["connection"] == "close"
            assert f.read() == b""  # then closed
    (entry,) = [json.loads(line) for line in logged(path, 0, 1)]
    assert (entry["status"], entry["method"], entry["path"]) == (408, "GET", "/slow")


def test_header_timeout_closes_silently_when_nothing_was_sent(serve, tmp_path):
    path = tmp_path / "access.log"
    server = serve("scope_app:app", timeouts={"header": "1s", "keep_alive": "1s"},
                   log={"access": str(path)})
    with server.connect() as s:  # a fresh connection that never speaks
        assert select.select([s], [], [], 10)[0]
        assert s.recv(100) == b""
    with server.connect() as s, s.makefile("rb") as f:  # idle after a request
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f)[0] == 200
        assert f.read() == b""
    assert len(logged(path, 0, 1)) == 1  # only the request that came


# ---- reopening and failing files ---------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_sigusr2_reopens_the_access_log(serve, tmp_path, workers):
    """logrotate's way: move the file, SIGUSR2, the next lines go to a new
    file at the old path; nothing is lost across the move."""
    import os
    import signal

    path = tmp_path / "access.log"
    server = serve("scope_app:app", workers=workers, log={"access": str(path)})
    for i in range(20):
        assert request(server, f"GET /before/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())[0] == 200
    logged(path, 0, 20)
    rotated = tmp_path / "access.log.1"
    os.rename(path, rotated)
    mark = server.mark()
    os.kill(server.pid, signal.SIGUSR2)
    # The master forwards the signal: a request served before a worker got
    # it rightly goes to the moved file. Wait until every worker reopened.
    wait_for(lambda: server.stderr_since(mark).count(f"access log {path} reopened") >= workers,
             10, f"{workers} access-log reopens", lambda: f": {server.stderr()}")
    for i in range(20):
        assert request(server, f"GET /after/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())[0] == 200
    wait_for(lambda: path.exists() and len(lines_after(path, 0)) >= 20, 10,
             "20 lines in the reopened file", lambda: f": {server.stderr()}")
    old = [json.loads(line)["path"] for line in lines_after(rotated, 0)]
    new = [json.loads(line)["path"] for line in lines_after(path, 0)]
    assert sorted(old + new) == sorted([f"/before/{i}" for i in range(20)] +
                                       [f"/after/{i}" for i in range(20)])
    assert all(p.startswith("/before/") for p in old)  # nothing new went to the moved file
    assert server.proc.poll() is None  # SIGUSR2 never kills
    assert "reopened" in server.stderr_since(mark)


def test_sigusr2_reopens_at_once_in_workers_that_serve_nothing(serve, tmp_path):
    """An idle worker (no request yet, so no timer armed) reopens when the
    signal comes, not at its next request: the moved file is let go of and
    the new one exists before any line is written (logrotate compresses the
    old file right after its postrotate script)."""
    import os
    import signal

    path = tmp_path / "access.log"
    server = serve("scope_app:app", workers=2, log={"access": str(path)})
    wait_for(lambda: server.stderr().count("worker ready") >= 2, 30, "2 workers ready")
    rotated = tmp_path / "access.log.1"
    os.rename(path, rotated)
    mark = server.mark()
    os.kill(server.pid, signal.SIGUSR2)
    wait_for(lambda: server.stderr_since(mark).count(f"access log {path} reopened") >= 2,
             10, "2 access-log reopens", lambda: f": {server.stderr()}")
    assert path.exists()

    def holders(name):
        found = []
        for pid in server.worker_pids():
            for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd) == str(name):
                        found.append(pid)
                except FileNotFoundError:
                    pass
        return sorted(found)

    assert holders(rotated) == []
    assert holders(path) == sorted(server.worker_pids())


def test_sigusr2_without_an_access_log_is_harmless(serve):
    import signal

    server = serve("scope_app:app")
    server.proc.send_signal(signal.SIGUSR2)
    assert request(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    assert server.proc.poll() is None


def test_a_full_disk_is_logged_once_and_serving_goes_on(serve):
    server = serve("scope_app:app", log={"access": "/dev/full"})
    for _ in range(30):
        assert request(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    wait_for(lambda: "No space left on device" in server.stderr(), 10, "the full-disk line",
             lambda: f": {server.stderr()}")
    assert server.stderr().count("No space left on device") == 1


def test_error_log_file_and_its_reopen(serve, tmp_path):
    import os
    import signal

    from conftest import free_port

    path = tmp_path / "error.log"
    # access: stderr shares the error log's destination, here the file. A
    # fixed port: the ready line the launcher reads for port 0 is in the file.
    server = serve("scope_app:app", listener={"tcp": f"127.0.0.1:{free_port()}"},
                   log={"error": str(path), "access": "stderr"})
    assert request(server, b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    wait_for(lambda: '"path":"/one"' in path.read_text(), 10, "the first line in error.log")
    # The master's line, said once every worker is ready (they may serve a
    # moment before it).
    wait_for(lambda: "serving scope_app:app" in path.read_text(), 10, "the master's line",
             lambda: f": {path.read_text()}")
    os.rename(path, tmp_path / "error.log.1")
    worker = server.worker_pid
    os.kill(server.pid, signal.SIGUSR2)
    # The master forwards the signal: wait for the worker's reopen before
    # the request whose line must land in the new file.
    wait_for(lambda: path.exists()
             and f"saltare[{worker}]: info: error log {path} reopened" in path.read_text(),
             10, "the worker's reopen", lambda: f": {server.stderr()}")
    assert request(server, b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    wait_for(lambda: path.exists() and '"path":"/two"' in path.read_text(), 10,
             "the reopened error.log", lambda: f": {server.stderr()}")
    text = path.read_text()
    assert f"error log {path} reopened" in text
    assert '"path":"/one"' not in text


def test_error_log_cannot_be_off(tmp_path):
    import subprocess

    from conftest import BIN

    cfg = tmp_path / "c.yaml"
    cfg.write_text('app: {target: "m:app"}\nlog:\n  error: off\n')
    r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 78
    assert 'log.error: expected "stderr" or a file path, got off' in r.stderr
