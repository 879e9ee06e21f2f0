"""Benchmark harness: saltare side by side with its peers, same apps, same pinning.

Usage
-----

    /usr/bin/python3 tools/bench/bench.py [--servers LIST] [--runs N] [--duration S]
                                          [--quick] [--out FILE] [--json FILE]

Servers (default: all): `saltare` (bazel-bin/saltare, or --saltare PATH, serving a YAML
file the harness writes), `uvicorn-uvloop` (uvicorn, uvloop + httptools),
`uvicorn-asyncio` (uvicorn, asyncio + h11) and `hypercorn` (asyncio worker), all run
with Debian's /usr/bin/python3. saltare is skipped, with the reason printed, when the
binary is missing or does not start; the peers still run.

Each server is pinned to CPU 0 (taskset) and every client (wrk, the Python clients in
bench_client.py) to CPU 1; all traffic stays on 127.0.0.1 on free ports. Per server and
app (tools/bench/apps/: `hello.py` raw ASGI, `fastapi_app.py` GET /items/{id}?q= with an
`async def` endpoint, `fastapi_sync_app.py` the same with a plain `def` endpoint (anyio's
thread pool), `transfer.py` upload/download) it measures:

- startup: spawn to the first successful HTTP response (connect is polled every 2 ms);
- idle Pss: sum of /proc/PID/smaps_rollup Pss over the server and all its descendants;
- rps and p99: `wrk -t1 -c64 --latency` for --duration seconds after a short warm-up;
- requests per CPU-second: wrk's request count over the CPU time (user + system, all
  threads, server and descendants) the server used during that run. On a shared machine
  the server's CPU may be busy with other work, and rps then says more about the
  scheduler than about the server; this one does not depend on the share it got;
- Pss after the load;
- Pss per idle keep-alive connection at 1,000 and 10,000 connections (--conns): a client
  opens N connections, sends one request on each, reads the response and idles; the
  harness reports (Pss with N idle - Pss before) / N, and how many the server still held;
- peak RSS growth during a 100 MiB upload (app discards the body chunk by chunk) and a
  100 MiB slow-reader download (64 KiB chunks out; client reads 1 MiB per 15 ms): the
  tree's VmRSS is sampled every 10 ms, growth = max - baseline.

HTTPS (`--phases tls`, or any of tls-load, tls-handshake, tls-resumed, tls-conns): for
each certificate of --tls-certs (ECDSA P-256, RSA-2048; self-signed, made by the openssl
CLI for the run) every server serves hello.py with the same certificate and key
(saltare: `tls: {cert, key}` on its listener; uvicorn --ssl-certfile/--ssl-keyfile;
hypercorn --certfile/--keyfile), and the harness measures:

- tls-load: wrk over HTTPS keep-alive as above, plus the server's CPU per request;
- tls-handshake: --handshakes TLS 1.3 connections in a row from one Python client, each
  a full handshake (no session offered) carrying one `Connection: close` GET: the rate
  (bounded by the client as much as by the server) and the server's CPU per handshake
  (utime + stime of its process tree from /proc/PID/stat over the phase);
- tls-resumed: the same, every connection resuming one ticket (no certificate sent);
- tls-conns: Pss per idle TLS keep-alive connection with --tls-conns open (first
  certificate only).

--runs N alternates the servers (A B C A B C ...) and reports the median of each metric;
the machine is noisy, so quote at least `--runs 3`. The output is a Markdown table of
the medians, the ratios saltare/peer for every metric, and the project's targets
(informational only: the harness never fails on a ratio). --out FILE also writes the
Markdown there; --json FILE writes every per-run value. --quick is a smoke check
(2 s runs, 1 s warm-up, 1,000 connections only). Every server is stopped (SIGTERM, then
SIGKILL after 5 s) on every path out, Ctrl-C included.

Examples:

    /usr/bin/python3 tools/bench/bench.py --quick
    /usr/bin/python3 tools/bench/bench.py --runs 3 --out bench.md
    /usr/bin/python3 tools/bench/bench.py --servers saltare,uvicorn-uvloop --phases hello
    /usr/bin/python3 tools/bench/bench.py --servers saltare,uvicorn-uvloop \
        --phases fastapi,fastapi-sync --runs 3
    /usr/bin/python3 tools/bench/bench.py --servers saltare,uvicorn-uvloop --phases tls \
        --runs 3

saltare serves this file (written to a temporary directory, fresh port each start):

    app: {target: hello:app, path: [<repo>/tools/bench/apps], loop: auto}
    workers: 1
    listeners: [{tcp: "127.0.0.1:<port>"}]
    log: {access: off}
    timeouts: {keep_alive: 300s}
    limits: {max_connections: 11024, max_body: 1GiB}

The peers get the same 300 s keep-alive timeout (uvicorn --timeout-keep-alive, hypercorn
--keep-alive) so the held connections stay open while they are measured. Known peer
behaviour: Debian's hypercorn 0.13.2 with h11 0.14 closes the connection after every
response whose app answers before reading the request's end (hello.py, FastAPI GETs), so
its wrk runs reconnect per request (reported in Notes) and it holds no idle connection.

Needs: wrk (`apt-get install -y wrk`), python3-uvicorn, python3-uvloop, python3-httptools,
python3-hypercorn, python3-fastapi (Debian packages). Run as a user allowed to raise
RLIMIT_NOFILE to about 11,000 (root, or a hard limit that high) for the 10,000-connection
check.
"""

import argparse
import atexit
import json
import os
import platform
import re
import resource
import select
import shlex
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.join(HERE, "apps")
REPO = os.path.dirname(os.path.dirname(HERE))
CLIENT = os.path.join(HERE, "bench_client.py")
PYTHON = "/usr/bin/python3"
HOST = "127.0.0.1"
SERVER_CPU = "0"
CLIENT_CPU = "1"

STARTUP_TIMEOUT = 30.0  # seconds from spawn to the first 200
STARTUP_POLL = 0.002  # seconds between connect attempts
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
KEEPALIVE_S = 300  # server idle keep-alive timeout, so held connections stay open
HOLD_TIMEOUT = 180.0  # seconds for the hold client to open N connections
TRANSFER_TIMEOUT = 90.0  # seconds for one 100 MiB transfer
SAMPLE_INTERVAL = 0.010  # seconds between RSS samples during transfers
MIB = 1024 * 1024
CONFIG_ERROR = 78  # saltare's exit status for a config it rejects

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)
from bench_client import response_complete  # noqa: E402


class BenchError(Exception):
    """A measurement could not be taken; the message says why."""


# ---------------------------------------------------------------------------------------
# Apps and servers


class App:
    def __init__(self, name, target, probe, load_path):
        self.name = name
        self.target = target  # module:attr inside APPS_DIR
        self.probe = probe  # GET path that must answer 200 once the server is ready
        self.load_path = load_path  # GET path wrk hammers


APPS = {
    "hello": App("hello", "hello:app", "/", "/"),
    "fastapi": App("fastapi", "fastapi_app:app", "/items/1?q=probe", "/items/42?q=bench"),
    "fastapi-sync": App("fastapi-sync", "fastapi_sync_app:app", "/items/1?q=probe",
                        "/items/42?q=bench"),
    "transfer": App("transfer", "transfer:app", "/", "/"),
}


def saltare_yaml(app, port, max_conns, minimal=False, tls=None):
    """The config saltare serves. The timeouts/limits keep held connections open, allow the
    10,000-connection check and the 100 MiB upload; `minimal` leaves them out (fallback for
    a build whose schema rejects them). `tls`: (cert, key) files for the listener."""
    text = (
        "app:\n"
        "  target: %s\n"
        "  path: [%s]\n"
        "  loop: auto\n"
        "workers: 1\n"
        "listeners:\n"
        '  - tcp: "%s:%d"\n'
        "%s"
        "log:\n"
        "  access: off\n" % (app.target, json.dumps(APPS_DIR), HOST, port,
                            "    tls: {cert: %s, key: %s}\n" % tuple(map(json.dumps, tls))
                            if tls else "")
    )
    if not minimal:
        text += "timeouts:\n  keep_alive: %ds\n" % KEEPALIVE_S
        text += "limits:\n  max_connections: %d\n  max_body: 1GiB\n" % max_conns
    return text


class Server:
    """One server under test: how to build its command line for an app and port."""

    def __init__(self, name, label, argv_fn):
        self.name = name
        self.label = label
        self.argv_fn = argv_fn  # (app, port, workdir, opts, tls) -> argv

    def argv(self, app, port, workdir, opts, tls=None):
        """tls: None, or (cert, key) files: the server listens with HTTPS."""
        return self.argv_fn(app, port, workdir, opts, tls)


def uvicorn_argv(loop, http):
    def build(app, port, workdir, opts, tls):
        return [
            PYTHON, "-m", "uvicorn", app.target, "--app-dir", APPS_DIR,
            "--host", HOST, "--port", str(port), "--loop", loop, "--http", http,
            "--no-access-log", "--log-level", "warning",
            "--timeout-keep-alive", str(KEEPALIVE_S),
        ] + (["--ssl-certfile", tls[0], "--ssl-keyfile", tls[1]] if tls else [])  # fmt: skip

    return build


def hypercorn_argv(app, port, workdir, opts, tls):
    return [
        PYTHON, "-m", "hypercorn", app.target, "--bind", "%s:%d" % (HOST, port),
        "--keep-alive", str(KEEPALIVE_S), "--log-level", "warning",
    ] + (["--certfile", tls[0], "--keyfile", tls[1]] if tls else [])  # fmt: skip


def saltare_argv(app, port, workdir, opts, tls):
    path = os.path.join(workdir, "saltare-%s-%d.yaml" % (app.name, port))
    with open(path, "w") as f:
        f.write(saltare_yaml(app, port, max(opts.conns + [opts.tls_conns, 1024]) + 1024,
                             opts.saltare_minimal, tls))
    return [opts.saltare, "-c", path]


SERVERS = {
    s.name: s
    for s in [
        Server("saltare", "saltare", saltare_argv),
        Server("uvicorn-uvloop", "uvicorn (uvloop+httptools)", uvicorn_argv("uvloop", "httptools")),
        Server("uvicorn-asyncio", "uvicorn (asyncio+h11)", uvicorn_argv("asyncio", "h11")),
        Server("hypercorn", "hypercorn", hypercorn_argv),
    ]
}
REFERENCE_PEER = "uvicorn-uvloop"

TLS_PHASES = ("tls-load", "tls-handshake", "tls-resumed", "tls-conns")
PHASES = ("hello", "fastapi", "fastapi-sync", "conns", "upload", "download") + TLS_PHASES
CERT_LABELS = {"ecdsa": "ECDSA P-256", "rsa": "RSA-2048"}
CERT_KEYS = {"ecdsa": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
             "rsa": ["-newkey", "rsa:2048"]}


def make_certs(workdir, names):
    """Self-signed certificates for 127.0.0.1 (openssl CLI): {name: (cert, key)}."""
    files = {}
    for name in names:
        cert, key = (os.path.join(workdir, "%s.%s" % (name, ext)) for ext in ("pem", "key"))
        subprocess.run(["openssl", "req", "-x509"] + CERT_KEYS[name] + [
            "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", key, "-out", cert], check=True, capture_output=True)
        files[name] = (cert, key)
    return files


# ---------------------------------------------------------------------------------------
# Processes: every child is tracked so that any exit path stops it.

LIVE = set()


def stop_process(proc, grace=STOP_GRACE):
    """SIGTERM the child's process group, SIGKILL it after `grace` seconds."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    LIVE.discard(proc)


def stop_all():
    for proc in list(LIVE):
        stop_process(proc)


def spawn(argv, cpu, **kwargs):
    """Starts argv pinned to `cpu`, in its own session (so its whole group can be killed)."""
    proc = subprocess.Popen(["taskset", "-c", cpu] + argv, start_new_session=True, **kwargs)
    LIVE.add(proc)
    return proc


def on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def raise_nofile(need):
    """Raises RLIMIT_NOFILE (inherited by servers and clients); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(need, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------------------------------
# /proc: process tree, Pss and RSS


def proc_tree(root):
    """The pids of `root` and all its descendants (empty if root is gone)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    if not os.path.exists("/proc/%d" % root):
        return []
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def tree_cpu_s(root):
    """CPU time (user + system, seconds) of `root` and its live descendants, all threads."""
    total = 0
    for pid in proc_tree(root):
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited between listing and reading
        total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def read_field_kib(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass  # the process exited between listing and reading
    return 0


def tree_pss_kib(root):
    return sum(read_field_kib("/proc/%d/smaps_rollup" % p, "Pss:") for p in proc_tree(root))


def settled_pss_kib(root, bound=3.0):
    """Pss of the tree once two readings 100 ms apart agree (within 0.2%), or after `bound`."""
    prev = tree_pss_kib(root)
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        time.sleep(0.1)
        cur = tree_pss_kib(root)
        if abs(cur - prev) <= max(8, prev // 500):
            return cur
        prev = cur
    return prev


class RssSampler(threading.Thread):
    """Samples the tree's VmRSS every SAMPLE_INTERVAL until stopped; keeps the maximum."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root = root
        self.max_kib = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self):
        pids, refreshed = proc_tree(self.root), time.monotonic()
        while not self.done.is_set():
            if time.monotonic() - refreshed > 0.5:
                pids, refreshed = proc_tree(self.root), time.monotonic()
            rss = sum(read_field_kib("/proc/%d/status" % p, "VmRSS:") for p in pids)
            self.max_kib = max(self.max_kib, rss)
            self.samples += 1
            self.done.wait(SAMPLE_INTERVAL)


def tree_rss_kib(root):
    return sum(read_field_kib("/proc/%d/status" % p, "VmRSS:") for p in proc_tree(root))


# ---------------------------------------------------------------------------------------
# HTTP probing and wrk


def http_get_status(port, path, timeout, tls=False):
    """One GET with Connection: close; returns the status code (raises OSError)."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        sock = ctx.wrap_socket(sock)
    with sock:
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (path, HOST, port)
        sock.sendall(req.encode())
        buf = b""
        while not response_complete(buf):
            data = sock.recv(65536)
            if not data:
                break
            buf += data
            if len(buf) > MIB:
                break
    match = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
    if not match:
        raise ConnectionError("no HTTP response (%r)" % buf[:40])
    return int(match.group(1))


def log_tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            text = f.read()[-8192:].decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Running:
    """A started server: process, port, log and the measured startup time."""

    def __init__(self, server, app, opts, workdir, tls=None):
        self.server, self.app, self.opts, self.tls = server, app, opts, tls
        self.port = free_port()
        self.log_path = os.path.join(workdir, "%s-%s-%d.log" % (server.name, app.name, self.port))
        argv = server.argv(app, self.port, workdir, opts, tls)
        self.cmd = " ".join(shlex.quote(a) for a in argv)
        env = dict(os.environ, PYTHONPATH=APPS_DIR, PYTHONDONTWRITEBYTECODE="1")
        with open(self.log_path, "wb") as log:
            t0 = time.monotonic()
            self.proc = spawn(argv, SERVER_CPU, cwd=APPS_DIR, env=env, stdin=subprocess.DEVNULL,
                              stdout=log, stderr=subprocess.STDOUT)
        try:
            self.startup_s = self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, t0):
        deadline = t0 + STARTUP_TIMEOUT
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("%s exited with status %s before serving\n  command: %s\n%s" % (
                    self.server.name, self.proc.returncode, self.cmd, log_tail(self.log_path)))
            try:
                status = http_get_status(self.port, self.app.probe, 2.0, bool(self.tls))
                if status == 200:
                    return time.monotonic() - t0
                last_error = "status %d" % status
            except OSError as e:
                last_error = str(e)
            time.sleep(STARTUP_POLL)
        raise BenchError("%s not serving %s within %ds (%s)\n  command: %s\n%s" % (
            self.server.name, self.app.probe, STARTUP_TIMEOUT, last_error, self.cmd,
            log_tail(self.log_path)))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        stop_process(self.proc)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def parse_wrk(text):
    """Returns {rps, p50_ms, p99_ms, requests, errors} from `wrk --latency` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    total = re.search(r"(\d+) requests in", text)
    if not (rps and p99 and total):
        raise BenchError("cannot parse wrk output:\n" + text[-2000:])
    errors = []
    sock = re.search(r"Socket errors: (connect \d+, read \d+, write \d+, timeout \d+)", text)
    read_errors = 0
    if sock:
        errors.append("socket errors: " + sock.group(1))
        read_errors = int(re.search(r"read (\d+)", sock.group(1)).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors.append("%s non-2xx responses" % non2xx.group(1))
    return {
        "rps": float(rps.group(1)),
        "p99_ms": float(p99.group(1)) * UNITS[p99.group(2)],
        "p50_ms": float(p50.group(1)) * UNITS[p50.group(2)] if p50 else None,
        "requests": int(total.group(1)),
        "errors": errors,
        "read_errors": read_errors,
    }


def run_wrk(port, path, seconds, scheme="http"):
    url = "%s://%s:%d%s" % (scheme, HOST, port, path)
    argv = ["wrk", "-t1", "-c64", "-d%ds" % seconds, "--timeout", "5s", "--latency", url]
    proc = spawn(argv, CLIENT_CPU, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise BenchError("wrk did not finish within %ds" % (seconds + 30))
    finally:
        stop_process(proc)
    if proc.returncode != 0:
        raise BenchError("wrk exited %d:\n%s" % (proc.returncode, out[-2000:]))
    return parse_wrk(out)


# ---------------------------------------------------------------------------------------
# Measurements. Each returns a dict of metrics (plus "notes", a list of strings).


def measure_load(run, opts):
    scheme = "https" if run.tls else "http"
    if opts.warmup > 0:
        run_wrk(run.port, run.app.load_path, opts.warmup, scheme)
    cpu0 = tree_cpu_s(run.proc.pid)
    result = run_wrk(run.port, run.app.load_path, opts.duration, scheme)
    cpu = tree_cpu_s(run.proc.pid) - cpu0
    out = {"rps": result["rps"], "p99_ms": result["p99_ms"], "notes": []}
    out["req_per_cpu_s"] = result["requests"] / cpu if cpu > 0 else None
    out["cpu_us_per_req"] = cpu / result["requests"] * 1e6 if result["requests"] else None
    if result["errors"]:
        note = "wrk: %s in %d requests" % ("; ".join(result["errors"]), result["requests"])
        if result["read_errors"] >= 0.9 * result["requests"]:
            note += " (the server closed the connection after almost every response)"
        out["notes"].append(note)
    if not run.alive():
        raise BenchError("server died during the load run\n" + log_tail(run.log_path))
    out["pss_after_kib"] = settled_pss_kib(run.proc.pid)
    return out


def read_json_line(proc, timeout):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise BenchError("client gave no answer within %ds" % timeout)
    line = proc.stdout.readline()
    if not line:
        raise BenchError("client exited (status %s) without an answer" % proc.poll())
    return json.loads(line)


def measure_conns(run, n):
    """Pss per idle keep-alive connection with n connections open."""
    before = settled_pss_kib(run.proc.pid)
    env = dict(os.environ, BENCH_PATH=run.app.load_path)
    mode = "tlshold" if run.tls else "hold"
    client = spawn([PYTHON, CLIENT, mode, str(run.port), str(n)], CLIENT_CPU, env=env,
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        opened = read_json_line(client, HOLD_TIMEOUT)
        after = settled_pss_kib(run.proc.pid)
        client.stdin.write("check\n")
        client.stdin.flush()
        alive = read_json_line(client, 30)["alive"]
        client.stdin.write("close\n")
        client.stdin.flush()
        client.wait(timeout=30)
    finally:
        stop_process(client)
    notes = []
    if opened["opened"] < n or opened["failures"]:
        notes.append("%d connections: opened %d in %.1fs, failures %s" % (
            n, opened["opened"], opened["seconds"], opened["failures"] or "none"))
    if alive < n:
        notes.append("%d connections: server held %d when measured" % (n, alive))
    per_conn = (after - before) * 1024.0 / alive if alive else None
    return {"conn_bytes_%d" % n: per_conn, "conn_held_%d" % n: alive, "notes": notes}


def measure_transfer(run, kind, opts):
    """Peak RSS growth of the server tree during one upload or slow-reader download."""
    size = opts.transfer_mib * MIB
    if kind == "upload":
        args = ["upload", str(run.port), str(size)]
    else:
        args = ["download", str(run.port), str(size), str(MIB), str(opts.read_pause_ms)]
    pid = run.proc.pid
    baseline = []
    for _ in range(5):
        baseline.append(tree_rss_kib(pid))
        time.sleep(SAMPLE_INTERVAL)
    base = statistics.median(baseline)
    sampler = RssSampler(pid)
    sampler.start()
    client = spawn([PYTHON, CLIENT] + args, CLIENT_CPU, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = client.communicate(timeout=TRANSFER_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError("%s did not finish within %ds" % (kind, TRANSFER_TIMEOUT))
    finally:
        sampler.done.set()
        sampler.join(timeout=5)
        stop_process(client)
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError("%s client printed no report (status %s)" % (kind, client.returncode))
    if not report.get("ok"):
        raise BenchError("%s failed: %s" % (kind, report))
    growth = max(0, sampler.max_kib - base)
    return {"growth_kib": growth, "seconds": report["seconds"], "samples": sampler.samples,
            "notes": []}


def measure_handshakes(run, n, resumed):
    """n TLS 1.3 connections in a row from one client on CPU 1, each carrying one
    `Connection: close` GET: full handshakes (no session offered) or resumptions of one
    ticket. The rate is bounded by the Python client as much as by the server; the
    server's CPU (utime + stime of its tree, /proc/PID/stat) per handshake is not."""
    kind = "resumed" if resumed else "handshakes"
    cpu0 = tree_cpu_s(run.proc.pid)
    client = spawn([PYTHON, CLIENT, kind, str(run.port), str(n)], CLIENT_CPU,
                   stdout=subprocess.PIPE, text=True)
    try:
        report = read_json_line(client, 30 + n * 0.05)
        client.wait(timeout=30)
    finally:
        stop_process(client)
    cpu = tree_cpu_s(run.proc.pid) - cpu0
    if not report.get("ok"):
        raise BenchError("%s client failed: %s" % (kind, report))
    key = "resumed_hs" if resumed else "full_hs"
    out = {key + "_per_s": n / report["seconds"], key + "_cpu_us": cpu / n * 1e6, "notes": []}
    if report["reused"] != (n if resumed else 0):
        out["notes"].append("%s: %d of %d connections resumed a session" % (
            kind, report["reused"], n))
    return out


def session(server, app_name, prefix, opts, workdir, steps, tls=None):
    """Starts `server` on one app, runs the measurement `steps`, always stops it.

    Metric keys are prefixed with `prefix` ("hello.", "upload.", ...).
    """
    run = Running(server, APPS[app_name], opts, workdir, tls)
    metrics = {prefix + "startup_ms": run.startup_s * 1000.0, "notes": []}
    try:
        metrics[prefix + "idle_pss_kib"] = settled_pss_kib(run.proc.pid)
        for step in steps:
            if not run.alive():
                raise BenchError("%s exited (status %s)\n%s" % (
                    server.name, run.proc.returncode, log_tail(run.log_path)))
            try:
                result = step(run)
            except BenchError as e:
                metrics["notes"].append("%s%s: %s" % (prefix, step.__name__, e))
                continue
            metrics["notes"].extend(result.pop("notes", []))
            metrics.update({prefix + k: v for k, v in result.items()})
    finally:
        run.stop()
    return metrics


def named(name, fn):
    fn.__name__ = name
    return fn


def measure_server(server, opts, workdir):
    """All the phases for one server in one run; returns flat metrics + notes."""
    plan = []
    if "hello" in opts.phases or "conns" in opts.phases:
        steps = []
        if "hello" in opts.phases:
            steps.append(named("load", lambda r: measure_load(r, opts)))
        if "conns" in opts.phases:
            for n in opts.conns:
                steps.append(named("conns-%d" % n, lambda r, n=n: measure_conns(r, n)))
        plan.append(("hello", "hello.", steps))
    for app_name in ("fastapi", "fastapi-sync"):
        if app_name in opts.phases:
            step = named("load", lambda r: measure_load(r, opts))
            plan.append((app_name, app_name + ".", [step]))
    for kind in ("upload", "download"):
        if kind in opts.phases:
            step = named("transfer", lambda r, k=kind: measure_transfer(r, k, opts))
            plan.append(("transfer", kind + ".", [step]))
    for cert in opts.tls_certs:
        steps = []
        if "tls-load" in opts.phases:
            steps.append(named("load", lambda r: measure_load(r, opts)))
        if "tls-handshake" in opts.phases:
            steps.append(named("handshakes",
                               lambda r: measure_handshakes(r, opts.handshakes, False)))
        if "tls-resumed" in opts.phases:
            steps.append(named("resumed", lambda r: measure_handshakes(r, opts.handshakes, True)))
        if "tls-conns" in opts.phases and cert == opts.tls_certs[0]:
            steps.append(named("conns", lambda r: measure_conns(r, opts.tls_conns)))
        if steps:
            plan.append(("hello", "tls-%s." % cert, steps, opts.tls_files[cert]))
    metrics = {"notes": []}
    for app_name, prefix, steps, *tls in plan:
        part = session(server, app_name, prefix, opts, workdir, steps, *tls)
        metrics["notes"].extend(part.pop("notes"))
        metrics.update(part)
    return metrics


# ---------------------------------------------------------------------------------------
# Report


def metric_rows(opts):
    """(key, label, kind, better, formatter): `better` is "higher" or "lower"."""
    mib = lambda kib: "%.1f" % (kib / 1024.0)  # noqa: E731
    rows = []
    for app in ("hello", "fastapi", "fastapi-sync"):
        if app not in opts.phases and not (app == "hello" and "conns" in opts.phases):
            continue
        rows += [
            (app + ".startup_ms", "%s: startup (ms)" % app, "lower", "%.0f"),
            (app + ".idle_pss_kib", "%s: idle Pss (MiB)" % app, "lower", mib),
        ]
        if app in opts.phases:
            rows += [
                (app + ".rps", "%s: requests/s" % app, "higher", "%.0f"),
                (app + ".req_per_cpu_s", "%s: requests per CPU-second" % app, "higher", "%.0f"),
                (app + ".p99_ms", "%s: p99 latency (ms)" % app, "lower", "%.2f"),
                (app + ".pss_after_kib", "%s: Pss after load (MiB)" % app, "lower", mib),
            ]
    if "conns" in opts.phases:
        for n in opts.conns:
            rows.append(("hello.conn_bytes_%d" % n, "Pss per idle keep-alive conn @%d (bytes)" % n,
                         "lower", "%.0f"))
            rows.append(("hello.conn_held_%d" % n, "keep-alive conns held @%d" % n, "higher", "%d"))
    for cert in opts.tls_certs:
        p, name = "tls-%s." % cert, "HTTPS %s" % CERT_LABELS[cert]
        if "tls-load" in opts.phases:
            rows += [
                (p + "rps", "%s keep-alive: requests/s" % name, "higher", "%.0f"),
                (p + "cpu_us_per_req", "%s keep-alive: CPU per request (us)" % name, "lower",
                 "%.1f"),
                (p + "p99_ms", "%s keep-alive: p99 latency (ms)" % name, "lower", "%.2f"),
            ]
        for key, label in (("full_hs", "full handshake"), ("resumed_hs", "resumed handshake")):
            if ("tls-handshake" if key == "full_hs" else "tls-resumed") in opts.phases:
                rows += [
                    (p + key + "_per_s", "%s: %ss/s (one client)" % (name, label), "higher",
                     "%.0f"),
                    (p + key + "_cpu_us", "%s: CPU per %s (us)" % (name, label), "lower", "%.0f"),
                ]
        if "tls-conns" in opts.phases and cert == opts.tls_certs[0]:
            n = opts.tls_conns
            rows += [(p + "conn_bytes_%d" % n, "%s: Pss per idle TLS conn @%d (bytes)" % (name, n),
                      "lower", "%.0f"),
                     (p + "conn_held_%d" % n, "%s: TLS conns held @%d" % (name, n), "higher",
                      "%d")]
    for kind in ("upload", "download"):
        if kind in opts.phases:
            rows.append(("%s.growth_kib" % kind, "%d MiB %s: peak RSS growth (MiB)" % (
                opts.transfer_mib, kind), "lower", lambda kib: "%.2f" % (kib / 1024.0)))
    return rows


def fmt(value, formatter):
    if value is None:
        return "n/a"
    return formatter(value) if callable(formatter) else formatter % value


def medians(results):
    """results: {server: [metrics per run]} -> {server: {key: median}}."""
    out = {}
    for server, runs in results.items():
        keys = {k for r in runs for k in r if k != "notes"}
        out[server] = {}
        for key in keys:
            values = [r[key] for r in runs if r.get(key) is not None]
            out[server][key] = statistics.median(values) if values else None
    return out


TARGETS = [
    # (key, description, kind, threshold): kind "ratio>=", "ratio<=" (vs REFERENCE_PEER) or "abs<="
    ("hello.rps", "raw ASGI rps >= 1.5x uvicorn (uvloop+httptools)", "ratio>=", 1.5),
    ("hello.p99_ms", "raw ASGI p99 no worse than uvicorn (uvloop+httptools)", "ratio<=", 1.0),
    ("fastapi.rps", "FastAPI rps >= 1.1x uvicorn (uvloop+httptools)", "ratio>=", 1.1),
    ("fastapi-sync.rps", "FastAPI sync (def) rps >= 1.1x uvicorn (uvloop+httptools)", "ratio>=",
     1.1),
    ("fastapi-sync.p99_ms", "FastAPI sync (def) p99 no worse than uvicorn (uvloop+httptools)",
     "ratio<=", 1.0),
    ("hello.idle_pss_kib", "raw ASGI idle Pss <= 0.70x uvicorn (uvloop+httptools)", "ratio<=",
     0.70),
    ("hello.conn_bytes_1000", "idle keep-alive conn <= 1 KiB Pss (@1000)", "abs<=", 1024),
    ("hello.conn_bytes_10000", "idle keep-alive conn <= 1 KiB Pss (@10000)", "abs<=", 1024),
    ("upload.growth_kib", "upload peak RSS growth <= 4 MiB", "abs<=", 4096),
    ("tls-ecdsa.cpu_us_per_req", "HTTPS ECDSA keep-alive CPU/request <= 0.6x uvicorn", "ratio<=",
     0.6),
    ("tls-rsa.cpu_us_per_req", "HTTPS RSA keep-alive CPU/request <= 0.6x uvicorn", "ratio<=", 0.6),
    ("tls-ecdsa.full_hs_cpu_us", "ECDSA full handshake CPU <= 0.7x uvicorn", "ratio<=", 0.7),
    ("tls-rsa.full_hs_cpu_us", "RSA full handshake CPU <= 0.7x uvicorn", "ratio<=", 0.7),
    ("tls-ecdsa.conn_bytes_1000", "idle TLS conn <= 14 KiB Pss (@1000, ECDSA)", "abs<=", 14336),
    ("download.growth_kib", "download peak RSS growth <= 4 MiB", "abs<=", 4096),
]


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def render_table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render_targets(med):
    rows = []
    s = med.get("saltare", {})
    ref = med.get(REFERENCE_PEER, {})
    for key, desc, kind, limit in TARGETS:
        if kind == "abs<=":
            value = s.get(key)
            shown = None if value is None else ("%.0f B" % value if "conn" in key
                                                else "%.2f MiB" % (value / 1024.0))
            met = None if value is None else value <= limit
        else:
            value = ratio(s.get(key), ref.get(key))
            shown = None if value is None else "%.2fx" % value
            if value is None:
                met = None
            else:
                met = value >= limit if kind == "ratio>=" else value <= limit
        if shown is None and key not in s and key not in ref:
            continue
        rows.append([desc, shown or "n/a", {True: "yes", False: "no", None: "n/a"}[met]])
    return render_table(["target", "saltare", "met"], rows)


def render(results, skipped, opts, meta):
    med = medians(results)
    names = [n for n in opts.servers if n in results]
    rows = metric_rows(opts)
    out = ["## Benchmark: saltare and peers", ""]
    out += ["- command: `%s`" % meta["command"], "- date: %s" % meta["date"]]
    out += ["- machine: %s" % meta["machine"]]
    out += ["- method: server pinned to CPU %s, clients (wrk -t1 -c64 --latency, Python clients) "
            "on CPU %s; %d s per wrk run after %d s warm-up; median of %d alternating run(s)"
            % (SERVER_CPU, CLIENT_CPU, opts.duration, opts.warmup, opts.runs)]
    out += ["- versions: %s" % meta["versions"], ""]
    header = ["metric"] + [SERVERS[n].label for n in names]
    table = [[label] + [fmt(med[n].get(key), f) for n in names] for key, label, _, f in rows]
    out += render_table(header, table) + [""]
    for name, reason in skipped.items():
        lines = [ln.strip() for ln in reason.splitlines() if ln.strip()]
        detail = lines[0] + (" (last output: `%s`)" % lines[-1] if len(lines) > 2 else "")
        out += ["**%s skipped**: %s" % (name, detail), ""]
    peers = [n for n in names if n != "saltare"]
    if "saltare" in med and peers:
        out += ["### Ratios saltare / peer", "",
                "Higher is better for requests/s and held connections, lower for the rest.", ""]
        ratio_rows = []
        for key, label, _, _ in rows:
            cells = [ratio(med["saltare"].get(key), med[p].get(key)) for p in peers]
            ratio_rows.append([label] + ["n/a" if c is None else "%.2fx" % c for c in cells])
        out += render_table(["metric"] + ["vs " + SERVERS[p].label for p in peers], ratio_rows)
        out.append("")
    if "saltare" in med:
        out += ["### Targets (informational)", ""] + render_targets(med) + [""]
    notes = [(n, i + 1, note)
             for n in names for i, r in enumerate(results[n]) for note in r["notes"]]
    if notes:
        out += ["### Notes", ""]
        out += ["- %s, run %d: %s" % (n, i, note.splitlines()[0]) for n, i, note in notes]
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Main


def tool_versions():
    parts = []
    for mod in ("uvicorn", "uvloop", "httptools", "h11", "hypercorn", "fastapi", "starlette"):
        try:
            from importlib.metadata import version

            parts.append("%s %s" % (mod, version(mod)))
        except Exception:
            parts.append("%s ?" % mod)
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5)
        parts.append(" ".join((wrk.stdout + wrk.stderr).split()[:2]))
    except (OSError, subprocess.TimeoutExpired):
        pass
    parts.append("Python %s" % platform.python_version())
    return ", ".join(parts)


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d CPUs (%s), Linux %s" % (os.cpu_count() or 0, model, platform.release())


def check_saltare(opts):
    """None if saltare can be tried, else the reason to skip it."""
    if not os.path.isfile(opts.saltare):
        return "binary %s not found (build it with `bazel build //:saltare`)" % opts.saltare
    if not os.access(opts.saltare, os.X_OK):
        return "binary %s is not executable" % opts.saltare
    return None


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Run saltare and its peers side by side; print a Markdown table.",
        epilog="See the module docstring (tools/bench/bench.py) for what is measured.")
    p.add_argument("--servers", default=",".join(SERVERS),
                   help="comma-separated subset of: %s" % ", ".join(SERVERS))
    p.add_argument("--phases", default="hello,fastapi,fastapi-sync,conns,upload,download",
                   help="comma-separated subset of: %s; `tls` stands for every tls-* phase"
                   % ", ".join(PHASES))
    p.add_argument("--tls-certs", default="ecdsa,rsa",
                   help="certificates for the tls-* phases: ecdsa (P-256), rsa (2048)")
    p.add_argument("--handshakes", type=int,
                   help="connections per handshake phase (default 1500, --quick 200)")
    p.add_argument("--tls-conns", type=int,
                   help="idle TLS connections for tls-conns (default 1000, --quick 200)")
    p.add_argument("--runs", type=int, default=1, help="alternating runs; medians are reported")
    p.add_argument("--duration", type=int, help="seconds per wrk run (default 10, --quick 2)")
    p.add_argument("--warmup", type=int, help="seconds of wrk warm-up (default 2, --quick 1)")
    p.add_argument("--conns", help="idle keep-alive counts (default 1000,10000; --quick 1000)")
    p.add_argument("--transfer-mib", type=int, default=100, help="upload/download size (MiB)")
    p.add_argument("--read-pause-ms", type=int, default=15,
                   help="slow reader: pause after each MiB read (ms)")
    p.add_argument("--quick", action="store_true", help="short smoke run")
    p.add_argument("--saltare", default=os.path.join(REPO, "bazel-bin", "saltare"),
                   help="saltare binary (default: bazel-bin/saltare of this checkout)")
    p.add_argument("--out", help="also write the Markdown report to this file")
    p.add_argument("--json", help="write every per-run value to this JSON file")
    opts = p.parse_args(argv)
    opts.servers = [s.strip() for s in opts.servers.split(",") if s.strip()]
    opts.phases = [s.strip() for s in opts.phases.split(",") if s.strip()]
    if "tls" in opts.phases:
        at = opts.phases.index("tls")
        opts.phases[at:at + 1] = [t for t in TLS_PHASES if t not in opts.phases]
    bad = [s for s in opts.servers if s not in SERVERS]
    if bad or not opts.servers:
        p.error("unknown server(s) %s; choose from %s" % (bad, ", ".join(SERVERS)))
    bad = [s for s in opts.phases if s not in PHASES]
    if bad or not opts.phases:
        p.error("unknown phase(s) %s" % bad)
    opts.tls_certs = [c.strip() for c in opts.tls_certs.split(",") if c.strip()]
    bad = [c for c in opts.tls_certs if c not in CERT_LABELS]
    if bad or not opts.tls_certs:
        p.error("unknown certificate kind(s) %s; choose from ecdsa, rsa" % bad)
    if not any(t in opts.phases for t in TLS_PHASES):
        opts.tls_certs = []
    opts.tls_files = {}
    if opts.handshakes is None:
        opts.handshakes = 200 if opts.quick else 1500
    if opts.tls_conns is None:
        opts.tls_conns = 200 if opts.quick else 1000
    if opts.duration is None:
        opts.duration = 2 if opts.quick else 10
    if opts.warmup is None:
        opts.warmup = 1 if opts.quick else 2
    if opts.conns is None:
        opts.conns = "1000" if opts.quick else "1000,10000"
    try:
        opts.conns = [int(x) for x in opts.conns.split(",") if x.strip()]
    except ValueError:
        p.error("--conns takes comma-separated integers, got %r" % opts.conns)
    checks = [(1 <= opts.runs <= 50, "--runs must be in 1..50"),
              (1 <= opts.duration <= 600, "--duration must be in 1..600 seconds"),
              (0 <= opts.warmup <= 60, "--warmup must be in 0..60 seconds"),
              (all(1 <= n <= 50000 for n in opts.conns), "--conns values must be in 1..50000"),
              (1 <= opts.transfer_mib <= 4096, "--transfer-mib must be in 1..4096"),
              (1 <= opts.handshakes <= 100000, "--handshakes must be in 1..100000"),
              (1 <= opts.tls_conns <= 50000, "--tls-conns must be in 1..50000"),
              (0 <= opts.read_pause_ms <= 1000, "--read-pause-ms must be in 0..1000")]
    for ok, message in checks:
        if not ok:
            p.error(message)
    for path in (opts.out, opts.json):
        if path and not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            p.error("cannot write %s: its directory is missing or not writable" % path)
    opts.saltare = os.path.abspath(opts.saltare)
    opts.saltare_minimal = False
    return opts


def preflight(opts):
    """Exits with a clear message if a required tool is missing."""
    tools = (("wrk", "apt-get install -y wrk"), ("taskset", "apt-get install -y util-linux"))
    if opts.tls_certs:
        tools += (("openssl", "apt-get install -y openssl"),)
    for tool, hint in tools:
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/bin").split(":")):
            sys.exit("bench: %s not found (%s)" % (tool, hint))
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench: needs 2 CPUs (server on CPU 0, clients on CPU 1)")
    need = max(opts.conns + [opts.tls_conns]) + 1024
    got = raise_nofile(need)
    if got < need:
        print("bench: warning: RLIMIT_NOFILE is %d, %d wanted for %d connections"
              % (got, need, max(opts.conns)), file=sys.stderr)
    os.sched_setaffinity(0, {int(CLIENT_CPU)})  # keep the harness off the server's CPU


def summary(name, m):
    keys = ["hello.startup_ms", "hello.idle_pss_kib", "hello.rps", "hello.p99_ms",
            "fastapi.rps", "hello.conn_bytes_1000", "hello.conn_bytes_10000",
            "upload.growth_kib", "download.growth_kib"]
    for cert in CERT_LABELS:
        keys += ["tls-%s.%s" % (cert, k) for k in (
            "rps", "cpu_us_per_req", "full_hs_per_s", "full_hs_cpu_us", "resumed_hs_per_s",
            "resumed_hs_cpu_us", "conn_bytes_%d" % 1000)]
    return name + ": " + ", ".join("%s=%.1f" % (k, m[k]) for k in keys if m.get(k) is not None)


def measure_with_fallback(name, opts, workdir):
    """measure_server, plus one retry for a saltare build whose schema rejects the
    timeouts/limits sections (exit 78): the retry serves the minimal config."""
    try:
        return measure_server(SERVERS[name], opts, workdir)
    except BenchError as e:
        rejected = "exited with status %d " % CONFIG_ERROR in str(e)
        if name != "saltare" or not rejected or opts.saltare_minimal:
            raise
        print("bench: saltare rejected the config (%s); retrying without timeouts/limits"
              % str(e).splitlines()[-1], file=sys.stderr)
    opts.saltare_minimal = True
    metrics = measure_server(SERVERS[name], opts, workdir)
    metrics["notes"].append("saltare rejected timeouts/limits in its config (exit 78): ran "
                            "with its defaults (keep-alive timeout, max_connections, max_body)")
    return metrics


def run_all(opts, workdir):
    results = {n: [] for n in opts.servers}
    skipped = {}
    if "saltare" in opts.servers:
        reason = check_saltare(opts)
        if reason:
            skipped["saltare"] = reason
            print("bench: skipping saltare: %s" % reason, file=sys.stderr)
    for i in range(opts.runs):
        for name in opts.servers:
            if name in skipped:
                continue
            print("bench: run %d/%d: %s ..." % (i + 1, opts.runs, name), file=sys.stderr)
            try:
                metrics = measure_with_fallback(name, opts, workdir)
            except BenchError as e:
                skipped[name] = str(e)
                print("bench: skipping %s: %s" % (name, e), file=sys.stderr)
                continue
            results[name].append(metrics)
            print("bench:   " + summary(name, metrics), file=sys.stderr)
            for note in metrics["notes"]:
                print("bench:   note: " + note, file=sys.stderr)
    return {n: r for n, r in results.items() if r}, skipped


def main(argv):
    opts = parse_args(argv)
    preflight(opts)
    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    meta = {"command": " ".join(shlex.quote(a) for a in [PYTHON, sys.argv[0]] + argv),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
            "versions": tool_versions()}
    try:
        with tempfile.TemporaryDirectory(prefix="saltare-bench-") as workdir:
            opts.tls_files = make_certs(workdir, opts.tls_certs)
            results, skipped = run_all(opts, workdir)
    except KeyboardInterrupt:
        stop_all()
        print("bench: interrupted; all servers stopped", file=sys.stderr)
        return 130
    finally:
        stop_all()
    if not results:
        print("bench: no server could be measured", file=sys.stderr)
        return 1
    report = render(results, skipped, opts, meta)
    print(report)
    if opts.out:
        with open(opts.out, "w") as f:
            f.write(report + "\n")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"meta": meta, "results": results, "skipped": skipped}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
