"""Intercept routes benchmark (issue 11): what the C core answers, against nginx.

Usage
-----

    /usr/bin/python3 tools/bench/routes_bench.py [--runs N] [--duration S] [--saltare PATH]
        [--cases health,static,app,pathsend]

Side by side in one run, each server pinned to CPU 0 with one worker, wrk
(`-t1 -c64`) on CPU 1, the same files, median of --runs alternating runs:

- `health`: saltare's `health: {}` route vs nginx's `location = /healthz
  { return 200 "ok\\n"; }`;
- `static 10 KiB`: a 10 KiB file from saltare's `files` route vs nginx's
  `location /static/` (sendfile on, both with ETag/Last-Modified);
- `app + 20 routes`: saltare's raw ASGI hello app (tools/bench/apps/hello.py)
  behind a table of 20 routes the request does not match (exact and prefix
  paths, a host, methods) vs the same app with no routes: the cost of the
  table on the app path;
- `pathsend 50 KiB`: a 50 KiB file from Starlette's FileResponse
  (tools/bench/apps/file_app.py) on saltare, which offers ASGI
  `http.response.pathsend` (the file goes out with sendfile, no byte through
  Python), against uvicorn (uvloop + httptools), which does not (the body is
  read in 64 KiB chunks in a worker thread and sent from Python); saltare
  with the body through Python (the same stock FileResponse) and saltare's
  `files` route serving the same file (no Python at all) for context.

For each it prints requests/s and CPU microseconds per request (user + system
of the server's process tree during the wrk run over wrk's request count),
and the ratios against the targets of issue 11 (>= 0.9x nginx requests/s,
<= 1.1x nginx CPU per request, < 2% cost for 20 unmatched routes, >= 2x
uvicorn for the pathsend FileResponse: read as both requests/s and CPU per
request). Needs wrk, nginx (Debian: nginx-light), python3-uvicorn,
python3-uvloop, python3-httptools and python3-starlette.
"""

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import HOST, PYTHON, SERVER_CPU  # noqa: E402

CASES = ("health", "static", "app", "pathsend")
FILE_SIZE = 50 * 1024

UNMATCHED = (
    [{"path": "/r%d" % i, "return": {"body": "r%d\n" % i}} for i in range(8)]
    + [{"path": "/p%d/*" % i, "app": {}, "limits": {"max_body": "2MiB"}} for i in range(6)]
    + [{"path": "/m%d" % i, "methods": ["POST"], "health": {}} for i in range(3)]
    + [{"host": "h%d.example.com" % i, "return": {"status": 204}} for i in range(3)]
)
assert len(UNMATCHED) == 20


def yaml_routes(routes):
    import json

    return "routes:\n" + "".join("  - %s\n" % json.dumps(r) for r in routes)


def saltare_config(workdir, port, root, routes, target="hello:app"):
    text = (
        "app: {target: %s, path: [%s]}\n"
        "workers: 1\n"
        'listeners: [{tcp: "%s:%d"}]\n'
        "log: {access: off}\n" % (target, bench.APPS_DIR, HOST, port)
    )
    if routes is not None:
        text += yaml_routes(routes)
    path = os.path.join(workdir, "saltare-%d.yaml" % port)
    with open(path, "w") as f:
        f.write(text)
    return path


def nginx_config(workdir, port, root):
    path = os.path.join(workdir, "nginx-%d.conf" % port)
    with open(path, "w") as f:
        f.write(
            "daemon off; master_process off; worker_processes 1; pid %s/nginx.pid;\n"
            "error_log %s/nginx-error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;\n"
            "  types { text/plain txt; } default_type application/octet-stream;\n"
            "  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
            "  uwsgi_temp_path %s; scgi_temp_path %s;\n"
            "  server {\n"
            "    listen %s:%d;\n"
            '    location = /healthz { default_type text/plain; return 200 "ok\\n"; }\n'
            "    location /static/ { root %s; }\n"
            "  }\n"
            "}\n" % ((workdir,) * 7 + (HOST, port, root))
        )
    return path


def start(argv, port, probe, workdir):
    log = open(os.path.join(workdir, "server-%d.log" % port), "w")
    proc = bench.spawn(argv, SERVER_CPU, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            if bench.http_get_status(port, probe, 1.0) == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise bench.BenchError("%s did not start; see %s" % (argv[0], log.name))
        time.sleep(0.01)


def measure(proc, port, path, opts):
    bench.run_wrk(port, path, opts.warmup)
    cpu0 = bench.tree_cpu_s(proc.pid)
    r = bench.run_wrk(port, path, opts.duration)
    cpu = bench.tree_cpu_s(proc.pid) - cpu0
    if r["errors"]:
        raise bench.BenchError("wrk: %s" % "; ".join(r["errors"]))
    return {"rps": r["rps"], "cpu_us": cpu * 1e6 / r["requests"]}


def check_file(port, path, size, want_etag):
    """One GET: a 200 with the whole file and FileResponse's headers, or BenchError."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        etag = resp.getheader("etag")
    finally:
        conn.close()
    if resp.status != 200 or len(body) != size or (want_etag and not etag):
        raise bench.BenchError("GET %s on port %d: status %d, %d bytes, etag %r (want 200, %d)"
                               % (path, port, resp.status, len(body), etag, size))


def uvicorn_argv(port, target):
    return [PYTHON, "-m", "uvicorn", target, "--app-dir", bench.APPS_DIR, "--host", HOST,
            "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning", "--timeout-keep-alive", str(bench.KEEPALIVE_S)]


def pathsend_run(opts, workdir, root, out):
    """saltare's pathsend and body-through-Python FileResponse, uvicorn's FileResponse, and
    the same file from saltare's `files` route (no Python at all) for context."""
    runs = [
        ("saltare pathsend", "saltare", "/file"),
        ("saltare, body through Python", "saltare", "/plain"),
        ("uvicorn (uvloop+httptools)", "uvicorn", "/file"),
        ("saltare files route (no Python)", "files", "/static/file50k.bin"),
    ]
    for label, server, path in runs:
        port = bench.free_port()
        if server == "saltare":
            argv = [opts.saltare, "-c", saltare_config(workdir, port, None, None, "file_app:app")]
        elif server == "files":
            routes = [{"path": "/static/*", "files": {"root": os.path.join(root, "static")}}]
            argv = [opts.saltare, "-c", saltare_config(workdir, port, None, routes,
                                                       "file_app:app")]
        else:
            argv = uvicorn_argv(port, "file_app:app")
        proc = start(argv, port, path, workdir)
        try:
            check_file(port, path, FILE_SIZE, True)
            out.setdefault("pathsend 50 KiB", {})[label] = measure(proc, port, path, opts)
        except bench.BenchError as e:
            raise bench.BenchError("%s (%s, exit status %s): %s\n%s" % (
                label, " ".join(argv), proc.poll(), e,
                bench.log_tail(os.path.join(workdir, "server-%d.log" % port))))
        finally:
            bench.stop_process(proc)


def one_run(opts, workdir, root):
    """Every selected case once; returns {case: {server: {rps, cpu_us}}}."""
    out = {}
    if "pathsend" in opts.cases:
        pathsend_run(opts, workdir, root, out)
    cases = [(case, path) for key, case, path in (("health", "health", "/healthz"),
                                                   ("static", "static 10 KiB",
                                                    "/static/file10k.txt"))
             if key in opts.cases]
    routes = [
        {"path": "/healthz", "health": {}},
        {"path": "/static/*", "files": {"root": os.path.join(root, "static")}},
    ]
    for server in ("saltare", "nginx") if cases else ():
        port = bench.free_port()
        if server == "saltare":
            argv = [opts.saltare, "-c", saltare_config(workdir, port, root, routes)]
        else:
            argv = [opts.nginx, "-c", nginx_config(workdir, port, root), "-p", workdir]
        proc = start(argv, port, "/healthz", workdir)
        try:
            for case, path in cases:
                out.setdefault(case, {})[server] = measure(proc, port, path, opts)
        finally:
            bench.stop_process(proc)
    for label, table in (("no routes", None), ("20 unmatched routes", UNMATCHED)) \
            if "app" in opts.cases else ():
        port = bench.free_port()
        proc = start([opts.saltare, "-c", saltare_config(workdir, port, root, table)], port, "/",
                     workdir)
        try:
            out.setdefault("app", {})[label] = measure(proc, port, "/", opts)
        finally:
            bench.stop_process(proc)
    return out


def median(runs, case, who, key):
    return statistics.median(r[case][who][key] for r in runs)


def report(runs, opts):
    lines = [
        "| case | server | requests/s | CPU us/request |",
        "|---|---|---:|---:|",
    ]
    table = (("health", "health", ("saltare", "nginx")),
             ("static", "static 10 KiB", ("saltare", "nginx")),
             ("app", "app", ("no routes", "20 unmatched routes")),
             ("pathsend", "pathsend 50 KiB", ("saltare pathsend", "saltare, body through Python",
                                              "uvicorn (uvloop+httptools)",
                                              "saltare files route (no Python)")))
    for key, case, whos in table:
        if key not in opts.cases:
            continue
        for who in whos:
            lines.append("| %s | %s | %.0f | %.1f |" % (
                case, who, median(runs, case, who, "rps"), median(runs, case, who, "cpu_us")))
    lines += ["", "| target | ratio |", "|---|---:|"]
    for case in [c for k, c, _ in table[:2] if k in opts.cases]:
        lines.append("| %s: saltare/nginx requests/s (>= 0.9x) | %.2fx |" % (
            case, median(runs, case, "saltare", "rps") / median(runs, case, "nginx", "rps")))
        lines.append("| %s: saltare/nginx CPU per request (<= 1.1x) | %.2fx |" % (
            case, median(runs, case, "saltare", "cpu_us") / median(runs, case, "nginx", "cpu_us")))
    if "app" in opts.cases:
        base = median(runs, "app", "no routes", "cpu_us")
        lines.append("| app path: CPU per request with 20 unmatched routes (< +2%%) | %+.1f%% |"
                     % ((median(runs, "app", "20 unmatched routes", "cpu_us") / base - 1) * 100))
    if "pathsend" in opts.cases:
        case, peer = "pathsend 50 KiB", "uvicorn (uvloop+httptools)"
        for who, target in (("saltare pathsend", " (>= 2x)"),
                            ("saltare, body through Python", "")):
            lines.append("| 50 KiB FileResponse: %s / uvicorn requests/s%s | %.2fx |" % (
                who, target, median(runs, case, who, "rps") / median(runs, case, peer, "rps")))
            lines.append("| 50 KiB FileResponse: uvicorn / %s CPU per request%s | %.2fx |" % (
                who, target,
                median(runs, case, peer, "cpu_us") / median(runs, case, who, "cpu_us")))
    return "\n".join(lines)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up")
    p.add_argument("--saltare", default=os.path.join(bench.REPO, "bazel-bin", "saltare"))
    p.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    p.add_argument("--cases", default=",".join(CASES),
                   help="comma-separated subset of %s" % ",".join(CASES))
    opts = p.parse_args(argv)
    opts.cases = [c for c in opts.cases.split(",") if c]
    bad = [c for c in opts.cases if c not in CASES]
    if bad or not opts.cases:
        p.error("--cases: unknown %s (choose from %s)" % (",".join(bad) or "(none given)",
                                                          ",".join(CASES)))
    workdir = tempfile.mkdtemp(prefix="routes-bench-")
    root = os.path.join(workdir, "www")
    os.makedirs(os.path.join(root, "static"))
    with open(os.path.join(root, "static", "file10k.txt"), "wb") as f:
        f.write(os.urandom(10240))
    # file_app.py serves the file BENCH_FILE names (the servers inherit the environment).
    os.environ["BENCH_FILE"] = os.path.join(root, "static", "file50k.bin")
    with open(os.environ["BENCH_FILE"], "wb") as f:
        f.write(os.urandom(FILE_SIZE))
    try:
        runs = []
        for i in range(opts.runs):
            runs.append(one_run(opts, workdir, root))
            print("run %d/%d done" % (i + 1, opts.runs), file=sys.stderr)
        print(report(runs, opts))
    finally:
        bench.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
