"""Inspects the awaitables receive() returns, as the garbage collector and
the plain iterator protocol see them."""

import gc
import json


async def app(scope, receive, send):
    assert scope["type"] == "http"
    op = receive()
    facts = {
        "tracked": gc.is_tracked(op),
        "sees_receive": any(r is receive for r in gc.get_referents(op)),
    }
    try:
        next(op.__await__())  # a GET has its (empty) body at once
        facts["stop_value"] = None
    except StopIteration as stop:
        facts["stop_value"] = {k: v.decode() if isinstance(v, bytes) else v
                               for k, v in stop.value.items()}
    body = json.dumps(facts).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
