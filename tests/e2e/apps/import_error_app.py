"""Fails at import time, as an app with a missing dependency would."""

import does_not_exist_saltare_e2e  # noqa: F401


async def app(scope, receive, send):
    raise AssertionError("never imported")
