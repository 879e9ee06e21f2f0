"""The tracemalloc route action (issue 11): top Python allocations as
text, answered by the bridge without calling the app; tracing only starts
when a route asks for it."""

import json

import httpx

from conftest import START_TIMEOUT

# A snapshot walks every traced allocation in Python: seconds under ASan.
SNAPSHOT_TIMEOUT = START_TIMEOUT


def test_tracemalloc_route_lists_the_top_sites_without_the_app(serve):
    server = serve(
        "heap_app:app",
        routes=[{"path": "/debug/heap", "source": ["127.0.0.1"], "tracemalloc": {"top": 3}}],
    )
    r = httpx.get(server.url + "/debug/heap", timeout=SNAPSHOT_TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    lines = r.text.splitlines()
    assert lines[0].startswith("traced ") and "top 3 by size" in lines[0]
    sites = [line for line in lines[2:] if line]
    assert len(sites) == 3
    # Tracing began before the import: the app module's hoard is the top site.
    assert "heap_app.py:7" in sites[0], r.text
    # The app still serves everything else, and sees tracing on.
    assert httpx.get(server.url + "/", timeout=10).json() == {"app": True, "tracing": True}
    assert httpx.post(server.url + "/debug/heap", timeout=10).status_code == 405
    assert httpx.head(server.url + "/debug/heap", timeout=SNAPSHOT_TIMEOUT).status_code == 200


def test_no_tracemalloc_route_no_tracing(serve):
    server = serve("heap_app:app")
    assert httpx.get(server.url + "/", timeout=10).json() == {"app": True, "tracing": False}


def test_tracemalloc_route_keeps_its_source_restriction(serve):
    server = serve("heap_app:app", routes=[{"path": "/debug/heap", "source": ["10.0.0.0/8"], "tracemalloc": {}}])
    r = httpx.get(server.url + "/debug/heap", timeout=10)
    assert r.status_code == 403
    assert json.loads(httpx.get(server.url + "/", timeout=10).text)["tracing"] is True
