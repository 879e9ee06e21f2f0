"""One app for the differential test: FastAPI, raw ASGI and apps that break ASGI.

The top level is a raw ASGI dispatcher, so that the scope the server built
reaches /scope untouched:

  /scope...       raw ASGI: echoes its scope (and lifespan state) as JSON
  /body           raw ASGI: echoes the request body and how it arrived
  /bad/<how>      raw ASGI apps that fail, each in one ASGI-illegal way
  anything else   a FastAPI app (sync and async endpoints, forms, uploads,
                  cookies, CORS/GZip/TrustedHost middleware, streaming,
                  files, StaticFiles)

Lifespan goes to the FastAPI app; the dispatcher also puts a value into the
lifespan state (ASGI lifespan "state"), when the server offers one.
"""

import asyncio
import json
import pathlib

from fastapi import Cookie, FastAPI, File, Form, Response, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

HERE = pathlib.Path(__file__).resolve().parent

api = FastAPI()
started = []


@api.on_event("startup")
async def startup():
    started.append("startup")


class Item(BaseModel):
    name: str
    price: float


@api.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q, "started": started}


@api.get("/sync/items/{item_id}")
def read_item_sync(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q, "sync": True}


@api.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "double": item.price * 2}


@api.post("/sync/items")
def create_item_sync(item: Item):
    return {"name": item.name, "double": item.price * 2}


@api.post("/form")
async def form(name: str = Form(...), tags: list[str] = Form([])):
    return {"name": name, "tags": tags}


@api.post("/upload")
async def upload(file: UploadFile = File(...), note: str = Form("")):
    data = await file.read()
    return {
        "filename": file.filename,
        "content_type": file.content_type,
        "size": len(data),
        "head": data[:16].decode("latin-1"),
        "note": note,
    }


@api.get("/cookies/set")
def set_cookies(response: Response):
    response.set_cookie("session", "abc123", httponly=True, samesite="lax")
    response.set_cookie("theme", "dark", max_age=60, path="/")
    return {"set": 2}


@api.get("/cookies/read")
def read_cookies(session: str | None = Cookie(None), theme: str | None = Cookie(None)):
    return {"session": session, "theme": theme}


@api.get("/big")
def big():
    return PlainTextResponse("saltare compat " * 400)


@api.get("/stream")
async def stream():
    async def parts():
        for i in range(4):
            yield f"part {i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(parts(), media_type="text/plain")


@api.get("/sync/stream")
def stream_sync():
    def parts():
        for i in range(3):
            yield f"sync part {i}\n"

    return StreamingResponse(parts(), media_type="text/plain")


@api.get("/file")
def file():
    return FileResponse(HERE / "static" / "hello.txt", filename="hello.txt")


@api.get("/empty", status_code=204)
async def empty():
    return Response(status_code=204)


@api.get("/not-modified")
async def not_modified():
    return Response(status_code=304, headers={"etag": '"x"'})


api.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
api.add_middleware(GZipMiddleware, minimum_size=500)
api.add_middleware(
    CORSMiddleware,
    allow_origins=["https://allowed.example"],
    allow_methods=["GET", "POST"],
    allow_headers=["x-custom"],
    allow_credentials=True,
)
api.add_middleware(TrustedHostMiddleware, allowed_hosts=["example.com", "*.example.com"])


# ---- raw ASGI -----------------------------------------------------------------


async def json_response(send, obj, status=200):
    body = json.dumps(obj, sort_keys=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def printable(value):
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [printable(v) for v in value]
    if isinstance(value, dict):
        return {k: printable(v) for k, v in value.items()}
    return value


async def scope_echo(scope, receive, send):
    await json_response(send, printable(dict(scope)))


async def body_echo(scope, receive, send):
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    await json_response(send, {"length": len(body), "body": body.decode("latin-1")})


START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}


def start(*headers):
    return {**START, "headers": START["headers"] + list(headers)}


async def bad(scope, receive, send):
    """Each path fails in one way the ASGI spec does not allow (or at least
    leaves to the server)."""
    how = scope["path"].removeprefix("/bad/")
    if how == "raise-before-start":
        raise RuntimeError("boom before start")
    if how == "return-without-start":
        return
    if how == "raise-after-start":
        await send(start())
        raise RuntimeError("boom after start")
    if how == "return-after-start":
        await send(start())
        return
    if how == "raise-mid-body":
        await send(start())
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom mid body")
    if how == "return-mid-body":
        await send(start())
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        return
    if how == "short-content-length":
        await send(start((b"content-length", b"10")))
        await send({"type": "http.response.body", "body": b"12345"})
        return
    if how == "long-content-length-later":
        await send(start((b"content-length", b"5")))
        await send({"type": "http.response.body", "body": b"123", "more_body": True})
        await send({"type": "http.response.body", "body": b"4567890"})
        return
    if how == "long-content-length":
        await send(start((b"content-length", b"5")))
        await send({"type": "http.response.body", "body": b"1234567890"})
        return
    if how == "body-before-start":
        await send({"type": "http.response.body", "body": b"x"})
        return
    if how == "start-twice":
        await send(start())
        await send(start())
        return
    if how == "unknown-message":
        await send({"type": "http.response.bogus"})
        return
    if how == "send-after-complete":
        await send(start((b"content-length", b"2")))
        await send({"type": "http.response.body", "body": b"ok"})
        await send({"type": "http.response.body", "body": b"again"})
        return
    if how == "raise-after-complete":
        await send(start((b"content-length", b"2")))
        await send({"type": "http.response.body", "body": b"ok"})
        raise RuntimeError("boom after the response")
    if how == "str-body":
        await send(start())
        await send({"type": "http.response.body", "body": "not bytes"})
        return
    if how == "bad-header-name":
        await send(start((b"x bad", b"1")))
        await send({"type": "http.response.body", "body": b"x"})
        return
    if how == "header-injection":
        await send(start((b"x-ok", b"1\r\nx-injected: 1")))
        await send({"type": "http.response.body", "body": b"x"})
        return
    if how == "204-with-body":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b"must not be sent"})
        return
    if how == "head-with-body":
        await send(start((b"content-length", b"4")))
        await send({"type": "http.response.body", "body": b"body"})
        return
    if how == "connection-close":
        await send(start((b"connection", b"close"), (b"content-length", b"2")))
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await json_response(send, {"unknown": how}, status=404)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        if "state" in scope:
            scope["state"]["greeting"] = "hello from lifespan"
        return await api(scope, receive, send)
    path = scope["path"]
    if path.startswith("/scope"):
        return await scope_echo(scope, receive, send)
    if path == "/body":
        return await body_echo(scope, receive, send)
    if path.startswith("/bad/"):
        return await bad(scope, receive, send)
    return await api(scope, receive, send)
