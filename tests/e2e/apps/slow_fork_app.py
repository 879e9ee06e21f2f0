"""Each forked worker pauses right after fork, before saltare's signal
handlers exist: a stop signal that arrives then must not be lost."""

import os
import sys
import time


def _after_fork():
    print(f"worker {os.getpid()} forked", file=sys.stderr, flush=True)
    time.sleep(0.5)


os.register_at_fork(after_in_child=_after_fork)


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
