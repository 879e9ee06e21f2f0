"""Reports what a listener test wants to see: scheme, server, the tls
extension, and whether socket-activation variables leaked to the app."""

import json
import os
from collections.abc import Sequence

# /keep stores the request's client_cert_chain; /kept reads it later, from
# another request, after the first connection has closed.
kept = []


def chain_facts(chain):
    """What the sequence protocol gives for client_cert_chain (a lazy
    sequence of PEM strings, not a list)."""
    items = list(chain)
    return {
        "type": type(chain).__name__,
        "len": len(chain),
        "bool": bool(chain),
        "sequence": isinstance(chain, Sequence),
        "first": chain[0] if items else None,
        "last": chain[-1] if items else None,
        "slice": list(chain[1:]),
        "contains": bool(items) and items[0] in chain,
        "index": chain.index(items[0]) if items else None,
        "count": chain.count(items[0]) if items else None,
        "eq_list": chain == items,
        "eq_tuple": chain == tuple(items),
        "ne_other": chain != ["x"],
        "items": items,
    }


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    tls = scope.get("extensions", {}).get("tls")
    if scope["path"] == "/keep":
        kept.append(tls["client_cert_chain"])
    if tls is not None:  # JSON has no lazy sequence: a list for the report
        tls = dict(tls, client_cert_chain=list(tls["client_cert_chain"]))
    payload = {
        "pid": os.getpid(),
        "scheme": scope["scheme"],
        "server": scope["server"],
        "tls": tls,
        "env": sorted(
            k for k in os.environ if k.startswith("LISTEN_") or k == "NOTIFY_SOCKET"
        ),
    }
    if scope["path"] == "/chain":
        payload["chain"] = chain_facts(scope["extensions"]["tls"]["client_cert_chain"])
    if scope["path"] == "/kept":
        payload["chain"] = chain_facts(kept.pop())
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})
