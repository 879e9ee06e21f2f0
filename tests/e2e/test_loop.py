"""The suite runs on the loop SALTARE_E2E_LOOP names (tools/dev.sh runs it
with both): a run meant for asyncio that silently ran uvloop would test
nothing new."""

import importlib.util

import httpx
from conftest import DEFAULT_LOOP


def test_servers_run_on_the_loop_the_suite_asks_for(serve):
    server = serve("loop_app:app")
    module = httpx.get(server.url + "/").text
    uvloop = importlib.util.find_spec("uvloop") is not None
    want = {"asyncio": "asyncio", "uvloop": "uvloop", "auto": "uvloop" if uvloop else "asyncio"}
    assert module.split(".")[0] == want[DEFAULT_LOOP], module
