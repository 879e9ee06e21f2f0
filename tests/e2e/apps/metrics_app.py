"""Answers with the worker's pid and the body length it read, so a test
knows which worker served what. /block holds its whole worker (a blocking
sleep on the loop) for 0.8 s, so the next connection goes to another
worker; /missing answers 404."""

import os
import time


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    total = 0
    while True:
        message = await receive()
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["path"] == "/block":
        time.sleep(0.8)
    body = f"{os.getpid()} {total}".encode()
    status = 404 if scope["path"] == "/missing" else 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
