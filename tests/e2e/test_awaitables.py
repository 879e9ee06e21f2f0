"""The awaitables the bridge hands to apps behave like Python's own."""

import httpx


def test_receive_awaitable_is_visible_to_the_cycle_collector(serve):
    # exchange -> coroutine -> frame -> op -> exchange is a cycle: the op must
    # be tracked and report its reference to the exchange (receive itself).
    server = serve("awaitables_app:app")
    facts = httpx.get(server.url + "/").json()
    assert facts["tracked"] is True
    assert facts["sees_receive"] is True


def test_receive_driven_by_next_returns_the_message_in_stop_iteration(serve):
    server = serve("awaitables_app:app")
    facts = httpx.get(server.url + "/").json()
    assert facts["stop_value"] == {"type": "http.request", "body": "", "more_body": False}
