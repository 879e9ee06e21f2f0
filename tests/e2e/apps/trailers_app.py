"""A chunked response announcing and sending trailers."""


async def app(scope, receive, send):
    assert scope["type"] == "http"
    assert "http.response.trailers" in scope["extensions"]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": b"hello ", "more_body": True})
    await send({"type": "http.response.body", "body": b"world", "more_body": False})
    await send(
        {
            "type": "http.response.trailers",
            "headers": [(b"x-checksum", b"abc123")],
            "more_trailers": False,
        }
    )
