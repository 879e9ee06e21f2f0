"""10,000 open idle WebSockets on one worker: all accepted and held, each
still answers, a new one is served beside them, and the worker's memory
per idle socket stays small (the Python side included: each one is a
task of the echo app waiting in receive())."""

import base64
import os
import resource
import socket
import struct

import pytest

from conftest import SANITIZED, wait_for

N = 10_000
KEY = base64.b64encode(os.urandom(16)).decode()
HANDSHAKE = (f"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def masked_text(payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    return (struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def read_until(sock: socket.socket, end: bytes) -> bytes:
    buf = b""
    while end not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError(buf)
        buf += chunk
    return buf


def echo(sock: socket.socket, text: bytes) -> bytes:
    sock.sendall(masked_text(text))
    buf = b""
    while len(buf) < 2 + len(text):
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError(buf)
        buf += chunk
    return buf


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_ten_thousand_idle_websockets_on_one_worker(serve):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < N + 200:
        pytest.skip(f"the fd limit ({hard}) is below {N + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = serve("ws_app:app", process={"raise_nofile": True},
                   limits={"max_connections": N + 100})
    server.wait_serving()
    worker = server.worker_pid
    warm = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    warm.sendall(HANDSHAKE)
    assert read_until(warm, b"\r\n\r\n").startswith(b"HTTP/1.1 101 ")
    assert echo(warm, b"warm")[2:] == b"warm"
    base_kib = server.rss_kib()
    socks = [warm]
    try:
        for start in range(0, N, 500):  # handshakes in batches: the backlog stays short
            batch = [socket.create_connection(("127.0.0.1", server.port), timeout=60)
                     for _ in range(min(500, N - start))]
            for s in batch:
                s.sendall(HANDSHAKE)
            for s in batch:
                assert read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 101 ")
            socks += batch
        assert len(socks) == N + 1
        assert open_fds(worker) >= N
        # Idle now: each socket is a WebSocket the app waits on.
        per_socket = (server.rss_kib() - base_kib) * 1024 / N
        print(f"{per_socket:.0f} bytes RSS per idle WebSocket")
        if not SANITIZED:  # ASan's allocator and shadow memory are not ours
            assert per_socket < 8 * 1024, f"{per_socket:.0f} bytes per idle WebSocket"
        # Every one of them is alive, the first, the middle and the last...
        for s in (socks[1], socks[N // 2], socks[-1]):
            assert echo(s, b"still here")[2:] == b"still here"
        # ...and a new one is served beside them.
        fresh = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        fresh.sendall(HANDSHAKE)
        assert read_until(fresh, b"\r\n\r\n").startswith(b"HTTP/1.1 101 ")
        assert echo(fresh, b"new")[2:] == b"new"
        socks.append(fresh)
    finally:
        for s in socks:
            s.close()
    # All gone: the worker lets go of them.
    wait_for(lambda: open_fds(worker) < 200, 60, "the sockets to be closed")
    assert server.proc.poll() is None
