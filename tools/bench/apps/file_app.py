"""A file served by Starlette's FileResponse, with and without ASGI pathsend.

The file is the one named by the BENCH_FILE environment variable (an
absolute path; the benchmark creates it). Debian's Starlette (0.26) never
sends `http.response.pathsend`; newer Starlettes do when the server offers it.
So:

- `/file` is a FileResponse as a pathsend-aware Starlette runs it: the same
  stat in a worker thread and the same headers (content-type, content-length,
  last-modified, etag), then `{"type": "http.response.pathsend"}` when
  `scope["extensions"]` offers it, else the stock body loop (64 KiB reads
  through anyio's file wrapper, one worker-thread call each). Under uvicorn,
  which offers no pathsend, it is exactly Debian's FileResponse.
- `/plain` is Debian's FileResponse as it is: the body always goes through
  Python, whatever the server offers.
"""

import os

from starlette.responses import FileResponse

FILE = os.environ.get("BENCH_FILE", "")
if not os.path.isabs(FILE) or not os.path.isfile(FILE):
    raise RuntimeError("BENCH_FILE must name an existing regular file by its absolute path, "
                       "got %r" % FILE)


class PathsendFileResponse(FileResponse):
    """Debian Starlette's FileResponse with the pathsend branch newer ones have."""

    async def __call__(self, scope, receive, send):
        if self.send_header_only or "http.response.pathsend" not in scope.get("extensions", {}):
            await super().__call__(scope, receive, send)
            return
        if self.stat_result is None:
            # The same worker-thread stat and checks as the stock response.
            import stat

            import anyio

            try:
                stat_result = await anyio.to_thread.run_sync(os.stat, self.path)
            except FileNotFoundError:
                raise RuntimeError("File at path %s does not exist." % self.path)
            if not stat.S_ISREG(stat_result.st_mode):
                raise RuntimeError("File at path %s is not a file." % self.path)
            self.set_stat_headers(stat_result)
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.pathsend", "path": os.fspath(self.path)})
        if self.background is not None:
            await self.background()


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/file":
        response = PathsendFileResponse(FILE, method=scope["method"])
    elif path == "/plain":
        response = FileResponse(FILE, method=scope["method"])
    else:
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"not found\n"})
        return
    await response(scope, receive, send)
