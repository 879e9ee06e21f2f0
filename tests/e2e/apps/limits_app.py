"""For limits.concurrency: /hold answers only once /release was asked
(from any connection); /sleep answers after 3 s (limits.max_connection_lifetime);
everything else answers at once."""

import asyncio

released = None


async def app(scope, receive, send):
    global released
    if scope["type"] != "http":
        return
    if released is None:
        released = asyncio.Event()
    if scope["path"] == "/hold":
        await released.wait()
        released.clear()
    elif scope["path"] == "/sleep":
        await asyncio.sleep(3)
    elif scope["path"] == "/release":
        released.set()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": scope["path"].encode()})
