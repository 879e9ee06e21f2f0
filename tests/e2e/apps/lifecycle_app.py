"""Apps that outlive their clients, fail half way, or stream to a client that
resets. /state reports what the handlers saw (JSON)."""

import asyncio
import json

from starlette.responses import StreamingResponse

state = {"started": {}, "cancelled": {}, "received": [], "send_error": None,
         "sent_chunks": 0, "gen_yielded": 0, "gen_stopped": False}


def bump(kind, path):
    state[kind][path] = state[kind].get(path, 0) + 1


async def start(send, headers=()):
    await send({"type": "http.response.start", "status": 200, "headers": list(headers)})


async def body(send, data, more=False):
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def forever(path):
    """Works on, deaf to http.disconnect; only a cancellation ends it."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        bump("cancelled", path)
        raise


async def numbers():
    try:
        while True:
            state["gen_yielded"] += 1
            yield b"%d\n" % state["gen_yielded"]
            await asyncio.sleep(0.002)
    finally:
        state["gen_stopped"] = True


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    bump("started", path)
    if path == "/state":
        await start(send)
        return await body(send, json.dumps(state).encode())
    if path == "/reset-state":
        state["send_error"] = None
        await start(send)
        return await body(send, b"ok")
    if path == "/never":
        return await forever(path)
    if path == "/upload":
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        state["received"].append(message["type"])
        return
    if path == "/partial-never":
        await start(send)
        await body(send, b"part", more=True)
        return await forever(path)
    if path == "/raise-after-body":
        await start(send)
        await body(send, b"partial", more=True)
        raise RuntimeError("failed half way")
    if path == "/return-mid-body":
        await start(send, [(b"content-length", b"10")])
        await body(send, b"01234", more=True)
        return
    if path == "/overrun":
        await start(send, [(b"content-length", b"10")])
        await body(send, b"01234", more=True)
        await body(send, b"56789abc", more=True)  # raises: 3 bytes too many
        return
    if path == "/overrun-first":
        await start(send, [(b"content-length", b"3")])
        return await body(send, b"abcdef")
    if path == "/start-twice":
        await start(send)
        return await start(send)
    if path == "/str-body":
        await start(send)
        return await body(send, "text")
    if path == "/start-only":
        return await start(send)
    if path == "/stream":
        await start(send)
        try:
            while True:
                await body(send, b"x" * 1024, more=True)
                state["sent_chunks"] += 1
                await asyncio.sleep(0.002)
        except OSError as e:
            state["send_error"] = f"{type(e).__module__}.{type(e).__name__}"
        return
    if path == "/starlette-stream":
        return await StreamingResponse(numbers())(scope, receive, send)
    await start(send)
    await body(send, b"ok")
