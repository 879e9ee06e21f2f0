"""/wait reads the body, then waits for http.disconnect; /seen reports it."""

import asyncio

seen = asyncio.Event()


async def app(scope, receive, send):
    assert scope["type"] == "http"
    if scope["path"] == "/seen":
        try:
            await asyncio.wait_for(seen.wait(), timeout=5)
            body = b"disconnect seen"
        except asyncio.TimeoutError:
            body = b"no disconnect"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    while (await receive()).get("more_body"):
        pass
    message = await receive()  # sleeps until the client goes away
    if message["type"] == "http.disconnect":
        seen.set()
