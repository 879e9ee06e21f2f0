"""Answers with scope["extensions"]["request_id"] (or null) as its body;
/own sets an X-Request-ID header of its own; /slow takes 0.2 s first. A
WebSocket gets the id as its one text message."""

import asyncio
import json


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        rid = scope["extensions"].get("request_id")
        await send({"type": "websocket.send", "text": json.dumps({"request_id": rid})})
        await send({"type": "websocket.close"})
        return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/slow":
        await asyncio.sleep(0.2)
    body = json.dumps({"request_id": scope["extensions"].get("request_id")}).encode()
    headers = [(b"content-type", b"application/json")]
    if scope["path"] == "/own":
        headers.append((b"x-request-id", b"from-the-app"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
