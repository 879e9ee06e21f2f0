"""Reads the request body chunk by chunk and answers with what it counted.

The body is never kept: only its length, a running digest and the number of
http.request messages, so a 100 MiB upload needs no 100 MiB anywhere.
"""

import hashlib
import json


async def app(scope, receive, send):
    assert scope["type"] == "http"
    total = chunks = 0
    digest = hashlib.md5()
    largest = 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body = message.get("body", b"")
        total += len(body)
        largest = max(largest, len(body))
        digest.update(body)
        chunks += 1
        if not message.get("more_body"):
            break
    data = json.dumps(
        {"length": total, "md5": digest.hexdigest(), "messages": chunks, "largest": largest}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})
