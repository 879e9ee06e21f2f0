"""WebSocket scenarios for the receive queue and the peer's close reason.

/hold/<name>: accepts, then receives nothing until GET /go/<name>; then
receives everything and records each event. GET /log/<name> returns the
events the app saw (messages, then the disconnect's code and reason)."""

import asyncio
import json

gates: dict[str, asyncio.Event] = {}
logs: dict[str, list] = {}


def gate(name):
    return gates.setdefault(name, asyncio.Event())


async def http(scope, receive, send):
    _, what, name = scope["path"].split("/", 2)
    if what == "go":
        gate(name).set()
        body = b"[]"
    else:
        body = json.dumps(logs.get(name)).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "http":
        return await http(scope, receive, send)
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    name = scope["path"].split("/", 2)[2]
    await gate(name).wait()
    seen = []
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            seen.append(["disconnect", m["code"], m.get("reason")])
            break
        seen.append(m.get("text", m.get("bytes", b"").decode("latin-1")))
    logs[name] = seen
