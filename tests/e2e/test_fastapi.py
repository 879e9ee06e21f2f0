"""A FastAPI app end to end: routing, validation, streaming, background tasks."""

import time

import httpx
import pytest


@pytest.fixture
def client(serve):
    server = serve("fastapi_app:app")
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def test_path_and_query_parameters(client):
    r = client.get("/items/42", params={"q": "x"})
    assert r.status_code == 200
    assert r.json() == {"item_id": 42, "q": "x"}


def test_json_body_post(client):
    r = client.post("/items", json={"name": "tea", "price": 2.5})
    assert r.status_code == 200
    assert r.json() == {"name": "tea", "double": 5.0}


def test_unknown_route_is_404(client):
    assert client.get("/nowhere").status_code == 404


def test_invalid_body_is_422(client):
    r = client.post("/items", json={"name": "tea"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "price"]


def test_streaming_response(client):
    with client.stream("GET", "/stream") as r:
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        assert b"".join(r.iter_bytes()) == b"0\n1\n2\n3\n4\n"


def test_background_task_runs_after_the_response(client):
    assert client.post("/background", params={"word": "later"}).json() == {"queued": "later"}
    deadline = time.monotonic() + 5
    while client.get("/background").json()["log"] != ["later"]:
        assert time.monotonic() < deadline, "the background task never ran"
