"""Speaks lifespan: puts state in scope["state"] and logs its shutdown."""

import json
import os
import sys

started = False


async def app(scope, receive, send):
    global started
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                started = True
                print(f"lifespan startup ran in pid {os.getpid()}", file=sys.stderr, flush=True)
                scope["state"]["greeting"] = "hello from lifespan"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                print("lifespan shutdown ran", file=sys.stderr, flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    data = json.dumps({"started": started, "state": scope.get("state")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": data})
