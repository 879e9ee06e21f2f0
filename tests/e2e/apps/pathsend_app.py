"""ASGI http.response.pathsend: the file named by the query string is sent
by the server. /cl/ declares Content-Length (the file's size, or /cl/N: N),
/chunked/ does not; /starlette/ is a Starlette FileResponse; /ext/ says
what scope["extensions"] offers."""

import json
import os
from urllib.parse import unquote

from starlette.responses import FileResponse


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    target = unquote(scope["query_string"].decode())
    if path == "/ext/":
        body = json.dumps(sorted(scope["extensions"])).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/starlette/":
        await FileResponse(target, media_type="text/plain")(scope, receive, send)
        return
    headers = [(b"content-type", b"application/octet-stream")]
    if path.startswith("/cl/"):
        n = path[4:].strip("/") or str(os.stat(target).st_size if os.path.exists(target) else 0)
        headers.append((b"content-length", n.encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.pathsend", "path": target})
    if path == "/chunked/twice/":
        await send({"type": "http.response.body", "body": b"more"})
