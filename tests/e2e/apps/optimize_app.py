"""Reports the interpreter's optimisation level as the app sees it (python.optimize)."""

import json
import sys


def documented():
    """A docstring that -OO drops."""


def asserts_run() -> bool:
    try:
        assert False
    except AssertionError:
        return True
    return False  # -O: the assert statement is gone


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps(
        {
            "optimize": sys.flags.optimize,
            "debug": __debug__,
            "asserts": asserts_run(),
            "doc": documented.__doc__,
        }
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
