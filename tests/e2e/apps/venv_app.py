"""Imports a module that only the configured app.venv provides."""

import saltare_venv_probe


async def app(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": saltare_venv_probe.VALUE.encode()})
