"""Answers with the module of the running event loop's class."""

import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    name = type(asyncio.get_running_loop()).__module__.encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": name})
