"""Only speaks HTTP: raises on the lifespan scope, as many raw apps do."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope type {scope['type']!r}")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"no lifespan here"})
