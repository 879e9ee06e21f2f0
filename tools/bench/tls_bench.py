"""HTTPS benchmark: saltare side by side with uvicorn (uvloop + httptools), same
app (tools/bench/apps/hello.py), same certificate and key.

    /usr/bin/python3 tools/bench/tls_bench.py [--seconds S] [--handshakes N] [--conns N]

For each certificate (ECDSA P-256 and RSA-2048, made here by the openssl CLI) and
server, pinned to CPU 0 (clients on CPU 1), it measures the server's CPU time (utime
+ stime from /proc, the whole process tree) per unit of work:

- keep-alive: `wrk -t1 -c64` over HTTPS for S seconds; CPU us per request;
- full handshakes: N TLS 1.3 connections, each a fresh handshake (the client never
  offers a session, so nothing resumes) carrying one `Connection: close` request;
  CPU us per handshake (the client's speed bounds the rate, not the figure);
- Pss per idle TLS keep-alive connection: N connections open, one request each, idle.

Prints a Markdown table and the ratios saltare/uvicorn.
"""

import argparse
import json
import os
import pathlib
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = ROOT / "tools" / "bench" / "apps"
PYTHON = "/usr/bin/python3"
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(d):
    def run(*a):
        subprocess.run(a, check=True, capture_output=True)

    san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", san,
        "-keyout", f"{d}/ecdsa.key", "-out", f"{d}/ecdsa.pem")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=localhost", "-addext", san, "-keyout", f"{d}/rsa.key", "-out", f"{d}/rsa.pem")


def tree(pid):
    pids, frontier = [pid], [pid]
    while frontier:
        p = frontier.pop()
        try:
            kids = pathlib.Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            kids = []
        pids += map(int, kids)
        frontier += map(int, kids)
    return pids


def cpu_seconds(pid):
    total = 0
    for p in tree(pid):
        try:
            fields = pathlib.Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CLK


def pss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def start(kind, cert, port, workdir):
    if kind == "saltare":
        cfg = pathlib.Path(workdir) / f"saltare-{port}.yaml"
        cfg.write_text(json.dumps({
            "app": {"target": "hello:app", "path": [str(APPS)]},
            "workers": 1,
            "log": {"access": "off"},
            "timeouts": {"keep_alive": "300s", "header": "300s"},
            "limits": {"max_connections": 20000},
            "listeners": [{"tcp": f"127.0.0.1:{port}",
                           "tls": {"cert": f"{workdir}/{cert}.pem", "key": f"{workdir}/{cert}.key"}}],
        }))
        argv = [str(ROOT / "bazel-bin" / "saltare"), "-c", str(cfg)]
    else:
        argv = [PYTHON, "-m", "uvicorn", "hello:app", "--app-dir", str(APPS), "--port", str(port),
                "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
                "--no-access-log", "--timeout-keep-alive", "300",
                "--ssl-certfile", f"{workdir}/{cert}.pem", "--ssl-keyfile", f"{workdir}/{cert}.key"]
    proc = subprocess.Popen(["taskset", "-c", "0"] + argv, stderr=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, start_new_session=True)
    ctx = ssl._create_unverified_context()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=2)):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{kind} did not start")


def stop(proc):
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def keepalive(proc, port, seconds):
    subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", "-d1s",
                    f"https://127.0.0.1:{port}/"], capture_output=True)
    before = cpu_seconds(proc.pid)
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s",
                          f"https://127.0.0.1:{port}/"], capture_output=True, text=True).stdout
    used = cpu_seconds(proc.pid) - before
    m = re.search(r"(\d+) requests in", out)
    reqs = int(m.group(1)) if m else 0
    return used / reqs * 1e6 if reqs else float("nan"), reqs / seconds


HANDSHAKE_CLIENT = r"""
import socket, ssl, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl._create_unverified_context()
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    assert not s.session_reused
    s.close()
"""


def handshakes(proc, port, n):
    before = cpu_seconds(proc.pid)
    subprocess.run(["taskset", "-c", "1", PYTHON, "-c", HANDSHAKE_CLIENT, str(n), str(port)],
                   check=True)
    return (cpu_seconds(proc.pid) - before) / n * 1e6


def idle_conns(proc, port, n):
    ctx = ssl._create_unverified_context()
    held = []

    def one():
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(65536)
        return s

    held += [one() for _ in range(20)]
    time.sleep(1)
    base = pss_kib(proc.pid)
    held += [one() for _ in range(n)]
    time.sleep(2)
    after = pss_kib(proc.pid)
    for s in held:
        s.close()
    return (after - base) * 1024 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--handshakes", type=int, default=2000)
    ap.add_argument("--conns", type=int, default=1000)
    opts = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        make_certs(d)
        for cert in ("ecdsa", "rsa"):
            for kind in ("saltare", "uvicorn"):
                port = free_port()
                proc = start(kind, cert, port, d)
                try:
                    us_req, rps = keepalive(proc, port, opts.seconds)
                    us_hs = handshakes(proc, port, opts.handshakes)
                    pss = idle_conns(proc, port, opts.conns) if cert == "ecdsa" else None
                finally:
                    stop(proc)
                rows[(cert, kind)] = (us_req, rps, us_hs, pss)
                print(f"{cert} {kind}: {us_req:.1f} us/request ({rps:.0f} rps), "
                      f"{us_hs:.0f} us/handshake" + (f", {pss:.0f} B/idle conn" if pss else ""),
                      file=sys.stderr)
    print("| cert | server | CPU us/request (keep-alive) | rps | CPU us/full handshake | "
          "Pss per idle TLS conn (bytes) |")
    print("|---|---|---:|---:|---:|---:|")
    for (cert, kind), (us_req, rps, us_hs, pss) in rows.items():
        print(f"| {cert} | {kind} | {us_req:.1f} | {rps:.0f} | {us_hs:.0f} | "
              f"{'' if pss is None else f'{pss:.0f}'} |")
    print()
    for cert in ("ecdsa", "rsa"):
        s, u = rows[(cert, "saltare")], rows[(cert, "uvicorn")]
        print(f"- {cert}: CPU/request {s[0] / u[0]:.2f}x uvicorn (target <= 0.6x), "
              f"CPU/handshake {s[2] / u[2]:.2f}x (target <= 0.7x)")
    print(f"- Pss per idle TLS connection: saltare {rows[('ecdsa', 'saltare')][3]:.0f} B "
          f"(target <= 14336 B), uvicorn {rows[('ecdsa', 'uvicorn')][3]:.0f} B")


if __name__ == "__main__":
    main()
