"""Edge cases of the HTTP engine. Speaks lifespan with an empty state.

Routes: /no-read answers without reading the body; /wait-disconnect reads
the body, then answers with the type of the next receive() message;
/state bumps a counter in scope["state"]; /204 and /304 send a body anyway;
/after-end sends body after the end and /last-error reports what that
raised; anything else echoes the request as JSON.
"""

import json

last_error = "none"


async def respond(send, status, body=b"", headers=()):
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    global last_error
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    path = scope["path"]
    if path == "/no-read":
        return await respond(send, 200, b"not read", [(b"content-length", b"8")])
    if path == "/wait-disconnect":
        await read_body(receive)
        message = await receive()
        return await respond(send, 200, message["type"].encode())
    if path == "/state":
        state = scope["state"]
        state["n"] = state.get("n", 0) + 1
        return await respond(send, 200, json.dumps(state).encode())
    if path in ("/204", "/304"):
        return await respond(send, int(path[1:]), b"hello", [(b"content-length", b"5")])
    if path == "/after-end":
        await respond(send, 200, b"ok", [(b"content-length", b"2")])
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except RuntimeError as e:
            last_error = f"RuntimeError: {e}"
        return
    if path == "/last-error":
        return await respond(send, 200, last_error.encode())
    body = await read_body(receive)
    data = json.dumps(
        {
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode("latin-1"),
            "http_version": scope["http_version"],
            "host": dict(scope["headers"]).get(b"host", b"").decode("latin-1"),
            "length": len(body),
        }
    ).encode()
    await respond(send, 200, data, [(b"content-type", b"application/json")])
