"""/blocks reports the interpreter's allocated blocks; anything else echoes.

Lets a test see whether requests leak Python objects: the count must not
grow with the number of requests served.
"""

import gc
import sys


async def app(scope, receive, send):
    assert scope["type"] == "http"
    if scope["path"] == "/blocks":
        gc.collect()
        body = str(sys.getallocatedblocks()).encode()
    else:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"b")]})
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
