"""Misbehaving handlers: the worker must survive every one of them."""


class Boom(Exception):
    pass


async def ok(send, body=b"ok"):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/raise":
        raise Boom("raised before the response started")
    if path == "/raise-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise Boom("raised in the middle of the body")
    if path == "/no-response":
        return
    if path == "/bad-header":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"x-evil", b"a\r\nset-cookie: injected=1")],
            }
        )
        return
    if path == "/body-before-start":
        await send({"type": "http.response.body", "body": b"x"})
        return
    if path == "/bad-message":
        try:
            await send({"type": "http.response.start", "status": "200"})
        except TypeError:
            return await ok(send, b"TypeError")
        return await ok(send, b"accepted")
    if path == "/start-twice":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except RuntimeError:
            await send({"type": "http.response.body", "body": b"RuntimeError"})
        return
    await ok(send)
