"""Reports what a listener test wants to see: scheme, server, the tls
extension, and whether socket-activation variables leaked to the app."""

import json
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    payload = {
        "pid": os.getpid(),
        "scheme": scope["scheme"],
        "server": scope["server"],
        "tls": scope.get("extensions", {}).get("tls"),
        "env": sorted(
            k for k in os.environ if k.startswith("LISTEN_") or k == "NOTIFY_SOCKET"
        ),
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
