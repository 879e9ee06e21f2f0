"""Reports the asyncio Task each request runs in. GET /factory installs a
task factory on the running loop (counting its calls) for later requests."""

import asyncio
import json

calls = 0


def factory(loop, coro, **kwargs):
    global calls
    calls += 1
    return asyncio.Task(coro, loop=loop, **kwargs)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    task = asyncio.current_task()
    if scope["path"] == "/factory":
        asyncio.get_running_loop().set_task_factory(factory)
    payload = {
        "is_task": isinstance(task, asyncio.Task),
        "in_all_tasks": task in asyncio.all_tasks(),
        "factory_calls": calls,
    }
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": data})
