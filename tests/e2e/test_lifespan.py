"""The lifespan protocol under app.lifespan auto / on / off."""

import re
import time

import httpx
from conftest import START_TIMEOUT


def test_lifespan_state_reaches_the_request_scope(serve):
    server = serve("lifespan_app:app", lifespan="on")
    r = httpx.get(server.url + "/")
    assert r.json() == {"started": True, "state": {"greeting": "hello from lifespan"}}
    assert server.stop() == 0
    assert "lifespan shutdown ran" in server.stderr()


def test_lifespan_auto_uses_a_supporting_app(serve):
    server = serve("lifespan_app:app", lifespan="auto")
    assert httpx.get(server.url + "/").json()["started"] is True


def test_lifespan_off_never_calls_the_app_with_it(serve):
    server = serve("lifespan_app:app", lifespan="off")
    assert httpx.get(server.url + "/").json() == {"started": False, "state": None}
    assert server.stop() == 0
    assert "lifespan shutdown ran" not in server.stderr()


def test_lifespan_auto_serves_an_app_that_does_not_support_it(serve):
    server = serve("no_lifespan_app:app", lifespan="auto")
    assert httpx.get(server.url + "/").text == "no lifespan here"
    assert "does not support lifespan" in server.stderr()


def test_lifespan_on_refuses_an_app_that_does_not_support_it(serve):
    server = serve("no_lifespan_app:app", lifespan="on", ready=False)
    assert server.wait() == 3
    assert "unsupported scope type 'lifespan'" in server.stderr()


def test_lifespan_startup_failed_exits_3_with_the_message(serve):
    server = serve("lifespan_failed_app:app", lifespan="auto", ready=False)
    assert server.wait() == 3
    assert "database unreachable" in server.stderr()


def test_import_error_exits_3_with_the_traceback(serve):
    server = serve("import_error_app:app", ready=False)
    assert server.wait() == 3
    log = server.stderr()
    assert "Traceback" in log
    assert "No module named 'does_not_exist_saltare_e2e'" in log


def test_missing_attribute_exits_3(serve):
    server = serve("scope_app:nope", ready=False)
    assert server.wait() == 3
    assert "nope" in server.stderr()


def test_each_worker_runs_its_own_lifespan(serve):
    server = serve("lifespan_app:app", lifespan="on", workers=2)
    deadline = time.monotonic() + START_TIMEOUT
    while len(set(re.findall(r"lifespan startup ran in pid (\d+)", server.stderr()))) < 2:
        assert time.monotonic() < deadline, server.stderr()
        time.sleep(0.01)
    assert httpx.get(server.url + "/").json()["started"] is True
    assert server.stop() == 0
    assert server.stderr().count("lifespan shutdown ran") == 2
