"""Streams a large response in 64 KiB chunks; /slow finishes after a pause;
/hang never finishes (it logs "hanging" once it is inside the app)."""

import asyncio
import sys

CHUNK = b"x" * 65536


async def app(scope, receive, send):
    assert scope["type"] == "http"
    if scope["path"] == "/slow":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"started;", "more_body": True})
        await asyncio.sleep(0.5)
        await send({"type": "http.response.body", "body": b"finished"})
        return
    if scope["path"] == "/hang":
        print("hanging", file=sys.stderr, flush=True)
        await asyncio.sleep(3600)
    mib = int(scope["query_string"] or b"1")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(mib << 20).encode())],
        }
    )
    for _ in range(mib * 16):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
