"""Raw ASGI app for the large-transfer memory checks.

POST /upload      consumes the request body chunk by chunk, keeps only a byte count,
                  and answers with that count (decimal, text/plain).
GET  /download    streams `size` bytes (query ?size=N, default 100 MiB) in 64 KiB
                  chunks with a Content-Length, each send awaited, so a server that
                  applies backpressure holds at most a few chunks.
Anything else     200 "ok" (used as the readiness probe).
"""

from urllib.parse import parse_qs

CHUNK = 64 * 1024
DEFAULT_SIZE = 100 * 1024 * 1024
MAX_SIZE = 4 * 1024 * 1024 * 1024
BLOCK = b"x" * CHUNK


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send, status, body):
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def upload(receive, send):
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await respond(send, 200, str(total).encode())


def requested_size(scope):
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        size = int(query.get("size", [DEFAULT_SIZE])[0])
    except ValueError:
        return None
    return size if 0 <= size <= MAX_SIZE else None


async def download(scope, send):
    size = requested_size(scope)
    if size is None:
        await respond(send, 400, b"size must be an integer in [0, 4 GiB]\n")
        return
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(size).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    view = memoryview(BLOCK)
    remaining = size
    while remaining > 0:
        n = min(CHUNK, remaining)
        remaining -= n
        body = BLOCK if n == CHUNK else bytes(view[:n])
        await send({"type": "http.response.body", "body": body, "more_body": remaining > 0})
    if size == 0:
        await send({"type": "http.response.body", "body": b""})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/upload" and scope["method"] == "POST":
        await upload(receive, send)
    elif scope["path"] == "/download" and scope["method"] == "GET":
        await download(scope, send)
    else:
        await respond(send, 200, b"ok")
