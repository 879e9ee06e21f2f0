"""For the logging tests: /raise... raises before answering, anything else
is a tiny 200. `failing_lifespan` refuses to start with a message no UTF-8
can carry (a lone surrogate) and a newline."""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/raise-big":
        raise RuntimeError("big\x1b[2J" + "x" * 100_000)
    if scope["path"].startswith("/raise"):
        raise RuntimeError("log_app raised")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def failing_lifespan(scope, receive, send):
    assert scope["type"] == "lifespan"
    await receive()
    await send(
        {"type": "lifespan.startup.failed", "message": "db \udcff down\nsaltare[1]: info: forged"}
    )
