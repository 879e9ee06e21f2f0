"""SIGUSR1: one JSON line of stats per process in the error log; the
master forwards the signal to its workers; nobody dies of it."""

import json
import signal

import httpx

from conftest import wait_for


def stats_lines(server, mark, n):
    def found():
        lines = [json.loads(l) for l in server.stderr_since(mark).splitlines()
                 if l.startswith('{"stats":')]
        return lines if len(lines) >= n else None

    return wait_for(found, 10, f"{n} stats lines", lambda: f":\n{server.stderr()}")


def test_master_and_each_worker_write_a_line(serve):
    server = serve("route_app:app", workers=2)
    wait_for(lambda: server.stderr().count("worker ready") >= 2, 30, "2 workers ready")
    for _ in range(3):
        assert httpx.get(server.url + "/done").status_code == 200
    # one request in flight: its body is still coming
    held = server.connect()
    held.sendall(b"POST /held HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")

    def round_with_the_held_request_seen():
        # the readiness signal is the stats themselves: ask until the
        # worker has read the held head and the other worker has seen the
        # last client's close (a worker writes its line before it handles
        # the round's events): a few rounds at most
        mark = server.mark()
        server.proc.send_signal(signal.SIGUSR1)
        lines = stats_lines(server, mark, 3)
        settled = (sum(l.get("in_flight", 0) for l in lines) == 1
                   and sum(l.get("connections", 0) for l in lines if l["stats"] == "worker") == 1)
        return lines if settled else None

    lines = wait_for(round_with_the_held_request_seen, 10, "the held request in flight")
    master = [l for l in lines if l["stats"] == "master"]
    workers = [l for l in lines if l["stats"] == "worker"]
    assert len(master) == 1 and len(workers) == 2, lines
    assert master[0]["pid"] == server.pid and master[0]["workers"] == 2
    assert master[0]["draining"] is False and master[0]["rss_bytes"] > 1_000_000
    assert len({w["pid"] for w in workers}) == 2 and server.pid not in {w["pid"] for w in workers}
    assert sum(w["requests"] for w in workers) == 4
    assert sum(w["connections"] for w in workers) == 1
    assert sum(w["in_flight"] for w in workers) == 1
    assert all(w["generation"] == 1 and w["draining"] is False and w["rss_bytes"] > 1_000_000
               for w in workers)
    held.sendall(b"67890")
    held.close()
    # again: one more round of lines, and everyone still serves
    mark = server.mark()
    server.proc.send_signal(signal.SIGUSR1)
    assert len(stats_lines(server, mark, 3)) == 3
    assert httpx.get(server.url + "/after").status_code == 200
    assert server.proc.poll() is None


def test_one_worker_has_a_master_too(serve):
    server = serve("route_app:app")
    server.wait_serving()
    mark = server.mark()
    server.proc.send_signal(signal.SIGUSR1)
    lines = stats_lines(server, mark, 2)
    by_kind = {l["stats"]: l for l in lines}
    assert len(lines) == 2 and set(by_kind) == {"master", "worker"}, lines
    assert by_kind["master"]["pid"] == server.pid and by_kind["master"]["generation"] == 1
    assert by_kind["worker"]["pid"] == server.worker_pid
    assert httpx.get(server.url + "/x").status_code == 200
