"""The process model's tests (master, workers, reload). Behaviour set by
environment variables read at import:

PROC_IMPORT_SLEEP  seconds the import takes (time.sleep: signals wait)
PROC_STARTUP       "hang": lifespan startup never completes; "fail": it fails
PROC_VERSION       returned by /version (a reload that re-imports shows the new one)
"""

import asyncio
import os
import sys
import time

VERSION = os.environ.get("PROC_VERSION", "1")
print(f"proc_app imported in pid {os.getpid()}", file=sys.stderr, flush=True)
time.sleep(float(os.environ.get("PROC_IMPORT_SLEEP", "0")))


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            mode = os.environ.get("PROC_STARTUP", "")
            print(f"startup in pid {os.getpid()}", file=sys.stderr, flush=True)
            if mode == "hang":
                await asyncio.sleep(3600)
            if mode == "fail":
                await send({"type": "lifespan.startup.failed", "message": "no database"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            print(f"shut down cleanly in pid {os.getpid()}", file=sys.stderr, flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def reply(send, body: bytes, status: int = 200):
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    path = scope["path"]
    arg = float(scope["query_string"] or b"0")
    if path == "/pid":
        return await reply(send, str(os.getpid()).encode())
    if path == "/version":
        return await reply(send, VERSION.encode())
    if path == "/block":  # holds the event loop: no signal handling runs
        print(f"blocking in pid {os.getpid()}", file=sys.stderr, flush=True)
        time.sleep(arg)
        return await reply(send, b"blocked")
    if path == "/slow":
        print(f"slow request in pid {os.getpid()}", file=sys.stderr, flush=True)
        await asyncio.sleep(arg)
        return await reply(send, b"slow done")
    if path == "/crash":
        os._exit(1)
    if path == "/epipe":  # a write to a pipe nobody reads: EPIPE, as Python expects
        r, w = os.pipe()
        os.close(r)
        try:
            os.write(w, b"x")
            outcome = b"written"
        except BrokenPipeError:
            outcome = b"BrokenPipeError"
        finally:
            os.close(w)
        return await reply(send, outcome)
    if path == "/grow":  # keeps arg MiB alive in this worker
        globals().setdefault("_held", []).append(bytearray(int(arg) << 20))
        return await reply(send, b"grown")
    return await reply(send, b"ok")
