"""Reports who the worker runs as, and whether it can still read a file
only root may read (the path in the query string)."""

import json
import os
import urllib.parse


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = urllib.parse.unquote(scope["query_string"].decode())
    try:
        with open(path, "rb"):
            readable = True
    except OSError:
        readable = False
    payload = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
        "groups": sorted(os.getgroups()),
        "key_readable": readable,
        "env": sorted(k for k in os.environ if k.startswith("SALTARE_LISTEN")),
    }
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})
