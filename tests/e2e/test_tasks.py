"""Every request runs in an asyncio Task of its own, made the way the loop
makes them (a task factory the app installs included)."""

import httpx


def test_each_request_runs_in_its_own_asyncio_task(serve):
    server = serve("task_app:app")
    with httpx.Client(base_url=server.url) as client:
        first, second = client.get("/").json(), client.get("/").json()
    for info in (first, second):
        assert info["is_task"] and info["in_all_tasks"]
        assert info["factory_calls"] == 0


def test_a_task_factory_the_app_installs_makes_the_request_tasks(serve):
    server = serve("task_app:app")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/factory").json()["factory_calls"] == 0
        later = [client.get("/").json() for _ in range(3)]
    assert [info["factory_calls"] for info in later] == [1, 2, 3]
    assert all(info["is_task"] and info["in_all_tasks"] for info in later)
