"""The WebSocket receive queue (`websocket.max_queue`) and the peer's close
reason in websocket.disconnect, end to end."""

import asyncio
import socket

import httpx
import pytest
import websockets

from test_websocket import Raw, frame


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def log(server, name):
    for _ in range(1000):
        got = httpx.get(f"{server.url}/log/{name}", timeout=10).json()
        if got is not None:
            return got
        asyncio.run(asyncio.sleep(0.01))
    raise AssertionError(f"the app never finished {name}")


def go(server, name):
    httpx.get(f"{server.url}/go/{name}", timeout=10)


@pytest.fixture(scope="module")
def q16(serve_module):
    return serve_module("ws_queue_app:app", websocket={"max_message": "256KiB"})


@pytest.fixture(scope="module")
def q2(serve_module):
    return serve_module("ws_queue_app:app", websocket={"max_queue": 2})


def test_messages_before_the_close_reach_the_app_with_the_reason(q16):
    """The app receives nothing until the client has closed: the queue
    takes the messages, the close is answered at once, and the app still
    gets every message, then the code and the reason."""

    async def client():
        ws = await websockets.connect(f"ws://127.0.0.1:{q16.port}/hold/a")
        for i in range(5):
            await ws.send(f"m{i}")
        await ws.close(code=4100, reason="done here ☃")
        return ws.close_code

    assert run(client()) == 4100  # echoed while the app was not receiving
    go(q16, "a")
    assert log(q16, "a") == ["m0", "m1", "m2", "m3", "m4", ["disconnect", 4100, "done here ☃"]]


def test_reason_is_empty_without_one_and_code_1005_without_a_code(q16):
    c = Raw(q16, "/hold/b")
    c.head()
    c.sock.sendall(frame(0x81, b"x") + frame(0x88, b""))
    assert c.frame() == (0x8, b"")
    go(q16, "b")
    assert log(q16, "b") == ["x", ["disconnect", 1005, ""]]


def pong_within(c, seconds):
    """Whether a pong arrives within `seconds` (frames before it skipped)."""
    c.sock.settimeout(seconds)
    try:
        while True:
            op, _ = c.frame()
            if op == 0xA:
                return True
    except (socket.timeout, TimeoutError):
        return False
    finally:
        c.sock.settimeout(10)


def test_reading_pauses_when_max_queue_messages_wait(q2):
    c = Raw(q2, "/hold/c")
    c.head()
    # Two messages fill the queue: the ping behind them is not read (so
    # not answered) until the app takes one.
    c.sock.sendall(frame(0x81, b"1") + frame(0x81, b"2") + frame(0x89, b"p")
                   + frame(0x81, b"3") + frame(0x88, b"\x03\xe8"))
    assert not pong_within(c, 1.0)
    go(q2, "c")
    assert pong_within(c, 10)
    assert log(q2, "c") == ["1", "2", "3", ["disconnect", 1000, ""]]


def test_reading_pauses_when_waiting_messages_hold_max_message_bytes(q16):
    c = Raw(q16, "/hold/d")
    c.head()
    big = b"y" * (200 * 1024)
    c.sock.sendall(frame(0x82, big) + frame(0x82, big) + frame(0x89, b"p")
                   + frame(0x88, b"\x03\xe8"))
    assert not pong_within(c, 1.0)  # 400 KiB waiting >= max_message (256 KiB)
    go(q16, "d")
    assert pong_within(c, 10)
    got = log(q16, "d")
    assert [len(m) for m in got[:2]] == [len(big), len(big)]
    assert got[2] == ["disconnect", 1000, ""]
