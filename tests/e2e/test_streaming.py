"""100 MiB through the server both ways with bounded memory."""

import json
import socket
import time

from conftest import SANITIZED, read_head, read_response

MIB = 1 << 20
TOTAL_MIB = 100
RSS_SLACK_KIB = 8 * 1024  # far below the 100 MiB an unbounded buffer would take


def warm_up(server, request):
    """The listener accepts before the app is imported: measure after."""
    with server.connect() as s, s.makefile("rb") as f:
        s.sendall(request)
        assert read_response(f)[0] == 200


def test_large_upload_is_streamed_in_chunks(serve):
    server = serve("body_app:app", limits={"max_body": "200MiB"})
    warm_up(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
    block = b"u" * MIB
    with server.connect() as s:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (TOTAL_MIB * MIB)
        )
        baseline = server.rss_kib()
        peak = baseline
        for _ in range(TOTAL_MIB):
            s.sendall(block)
            peak = max(peak, server.rss_kib())
        status, _, body, _ = read_response(s.makefile("rb"))
    assert status == 200
    got = json.loads(body)
    assert got["length"] == TOTAL_MIB * MIB
    assert got["messages"] > TOTAL_MIB  # many chunks, never the whole body at once
    assert got["largest"] <= 4 * MIB
    if not SANITIZED:  # ASan's quarantine keeps freed chunks resident
        assert peak - baseline < RSS_SLACK_KIB, f"RSS grew {peak - baseline} KiB"


def test_large_response_to_a_slow_reader_keeps_memory_bounded(serve):
    server = serve("stream_app:app")
    warm_up(server, b"GET /big?1 HTTP/1.1\r\nHost: x\r\n\r\n")
    with server.connect() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        baseline = server.rss_kib()
        s.sendall(b"GET /big?%d HTTP/1.1\r\nHost: x\r\n\r\n" % TOTAL_MIB)
        f = s.makefile("rb", buffering=0)
        status, headers, _ = read_head(f)
        assert status == 200
        assert int(headers["content-length"]) == TOTAL_MIB * MIB
        received = 0
        peak = baseline
        # A slow reader: pause while the app tries to push everything out.
        for _ in range(20):
            peak = max(peak, server.rss_kib())
            time.sleep(0.02)
        while received < TOTAL_MIB * MIB:
            data = s.recv(MIB)
            assert data, "connection closed early"
            received += len(data)
            if received % (8 * MIB) < len(data):
                peak = max(peak, server.rss_kib())
    assert received == TOTAL_MIB * MIB
    if not SANITIZED:  # ASan's quarantine keeps freed chunks resident
        assert peak - baseline < RSS_SLACK_KIB, f"RSS grew {peak - baseline} KiB"
