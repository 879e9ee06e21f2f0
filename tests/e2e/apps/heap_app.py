"""For the tracemalloc route: holds ~2 MB allocated on one line at import,
and says whether tracemalloc is tracing (and that the app was called)."""

import json
import tracemalloc

HOARD = [bytes(1000) + bytes([i % 256]) for i in range(2000)]  # the top site


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({"app": True, "tracing": tracemalloc.is_tracing()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
