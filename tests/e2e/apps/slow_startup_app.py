"""Lifespan startup that takes a while (logs "starting up" when it begins)."""

import asyncio
import sys


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                print("starting up", file=sys.stderr, flush=True)
                await asyncio.sleep(0.3)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                print("shut down cleanly", file=sys.stderr, flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"up"})
