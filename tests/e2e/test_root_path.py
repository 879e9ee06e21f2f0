"""root_path: X-Forwarded-Prefix from trusted proxies only, and app.root_path.
ASGI's path and raw_path include root_path: the proxy stripped the prefix,
so saltare puts it back."""

import subprocess

import httpx

from conftest import BIN

TRUSTED = {"headers": True, "trusted": ["127.0.0.1"]}


def scope(server, path="/users", **headers):
    return httpx.get(server.url + path, headers=headers).json()


def test_a_trusted_prefix_becomes_root_path(serve):
    server = serve("scope_app:app", proxy=TRUSTED)
    s = scope(server, "/users", **{"X-Forwarded-Prefix": "/api"})
    assert (s["root_path"], s["path"], s["raw_path"]) == ("/api", "/api/users", "/api/users")
    s = scope(server, "/", **{"X-Forwarded-Prefix": "/api/v1/"})  # trailing slash dropped
    assert (s["root_path"], s["path"]) == ("/api/v1", "/api/v1/")
    s = scope(server, "/x", **{"X-Forwarded-Prefix": "/caf%C3%A9"})
    assert (s["root_path"], s["path"], s["raw_path"]) == ("/café", "/café/x", "/caf%C3%A9/x")
    # several values: the right-most (the last proxy's)
    s = scope(server, "/x", **{"X-Forwarded-Prefix": "/outer, /inner"})
    assert s["root_path"] == "/inner"


def test_malformed_prefixes_are_ignored(serve):
    server = serve("scope_app:app", proxy=TRUSTED)
    for bad in ["api", "/a b", "/x%zz", "/x%4", "/q?x=1", "http://h/a"]:
        s = scope(server, "/users", **{"X-Forwarded-Prefix": bad})
        assert (s["root_path"], s["path"]) == ("", "/users"), bad


def test_untrusted_peers_prefix_is_not_used_but_passed_on(serve):
    server = serve("scope_app:app", proxy={"headers": True, "trusted": ["10.0.0.0/8"]})
    s = scope(server, "/users", **{"X-Forwarded-Prefix": "/api"})
    assert (s["root_path"], s["path"]) == ("", "/users")
    assert ["x-forwarded-prefix", "/api"] in s["headers"]
    server2 = serve("scope_app:app", proxy={"headers": False, "trusted": ["127.0.0.1"]})
    assert scope(server2, **{"X-Forwarded-Prefix": "/api"})["root_path"] == ""


def test_app_root_path_and_the_header_overriding_it(serve):
    server = serve("scope_app:app", proxy=TRUSTED, app_options={"root_path": "/mount"})
    s = scope(server, "/users")
    assert (s["root_path"], s["path"], s["raw_path"]) == ("/mount", "/mount/users", "/mount/users")
    s = scope(server, "/users", **{"X-Forwarded-Prefix": "/other"})
    assert (s["root_path"], s["path"]) == ("/other", "/other/users")
    s = scope(server, "/users", **{"X-Forwarded-Prefix": "/"})  # the proxy says: the root
    assert (s["root_path"], s["path"]) == ("", "/users")


def test_a_bad_app_root_path_is_a_config_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    for bad in ["api", "/api/", "/a b", "/caf%C3%A9"]:
        cfg.write_text('app: {target: "m:app", root_path: "%s"}\n' % bad)
        r = subprocess.run([BIN, "-t", "-c", str(cfg)], capture_output=True, text=True)
        assert r.returncode == 78, (bad, r.stderr)
        assert "app.root_path: expected \"\" or a path like \"/api\"" in r.stderr, r.stderr
