"""Raw ASGI WebSocket scenarios, one per path; GET /codes lists the close
codes the app saw in websocket.disconnect (newest last)."""

import json

codes = []


async def http(scope, receive, send):
    body = json.dumps(codes).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def summary(scope):
    return {
        "type": scope["type"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "query_string": scope["query_string"].decode(),
        "root_path": scope["root_path"],
        "http_version": scope["http_version"],
        "subprotocols": scope["subprotocols"],
        "asgi": scope["asgi"],
        "has_method": "method" in scope,
        "extensions": sorted(scope["extensions"]),
        "header_names": [k.decode() for k, _ in scope["headers"]],
        "client": list(scope["client"]),
        "server": list(scope["server"]),
    }


async def echo(receive, send, scope):
    protos = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": protos[0] if protos else None,
                "headers": [(b"x-ws", b"yes")]})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            codes.append(m["code"])
            return
        if m.get("text") == "close-me":
            await send({"type": "websocket.close", "code": 4000, "reason": "asked"})
            m = await receive()
            codes.append(m["code"])
            return
        if "text" in m:
            await send({"type": "websocket.send", "text": m["text"]})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "http":
        return await http(scope, receive, send)
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    if path == "/echo":
        await echo(receive, send, scope)
    elif path == "/reject":
        await send({"type": "websocket.close"})
    elif path == "/noaccept":
        return
    elif path == "/raise-before":
        raise RuntimeError("boom before accept")
    elif path == "/deny":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"4")]})
        await send({"type": "websocket.http.response.body", "body": b"nope"})
    elif path == "/close-app":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
    elif path == "/raise-after":
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom after accept")
    elif path == "/return":
        await send({"type": "websocket.accept"})
    elif path == "/scope":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(summary(scope))})
        m = await receive()
        codes.append(m.get("code"))
    elif path == "/send-after-close":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        try:
            await send({"type": "websocket.send", "text": "late"})
        except OSError as e:
            codes.append(type(e).__name__)
