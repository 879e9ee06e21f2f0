"""Says what reached the app: method, path, raw_path and the body length,
so a test sees which requests intercept routes let through."""

import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    total = 0
    while True:
        message = await receive()
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["path"].startswith("/stream/"):
        await stream(send)
        return
    data = json.dumps(
        {
            "app": True,
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "length": total,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def stream(send):
    """Up to 256 MiB, for a client that does not read (write timeouts)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    chunk = b"x" * (1 << 20)
    try:
        for _ in range(256):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except OSError:
        pass  # the server gave up on the client: what the test wants
