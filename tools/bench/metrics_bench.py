"""What the metrics registry costs.

Usage
-----

    /usr/bin/python3 tools/bench/metrics_bench.py [--saltare PATH] [--runs N]
                                                  [--duration S] [--scrapes N]

1. Request path: the raw hello app (tools/bench/apps/hello.py), one worker pinned to
   CPU 0, `wrk -t1 -c64` pinned to CPU 1 for --duration seconds after a 2 s warm-up,
   with metrics off (no `metrics` route: no registry) and on (a `metrics` route on a
   second listener: every request is recorded), alternating off/on --runs times. It
   prints the median requests/s of each and the ratio on/off.
2. Rendering: 4 workers serving the same app with a metrics listener; after a
   request mix (so every series exists), --scrapes GET /metrics over one keep-alive
   connection; it prints the median and p99 time from sending the request to the last
   byte of the response (an upper bound of the render time: it includes the HTTP
   round trip), and the page size.

Needs wrk (apt-get install wrk). Only 127.0.0.1 and free ports are used.
"""

import argparse
import os
import pathlib
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = ROOT / "tools" / "bench" / "apps"
SERVER_CPU, CLIENT_CPU = "0", "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(port, metrics_port, workers):
    text = (
        "app: {target: hello:app, path: [%s], loop: auto}\n"
        "workers: %d\n"
        "log: {access: off, level: warning}\n"
        "listeners:\n"
        '  - tcp: "127.0.0.1:%d"\n' % (APPS, workers, port)
    )
    if metrics_port:
        text += '  - tcp: "127.0.0.1:%d"\n    routes: [{path: /metrics, metrics: {}}]\n' % (
            metrics_port)
    return text


class Saltare:
    def __init__(self, binary, workdir, workers, metrics):
        self.port = free_port()
        self.metrics_port = free_port() if metrics else 0
        path = pathlib.Path(workdir) / ("m%d.yaml" % self.port)
        path.write_text(config(self.port, self.metrics_port, workers))
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, binary, "-c", str(path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(self.port, "/")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("saltare did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def read_response(f):
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, f.read(length)


def get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s, s.makefile("rb") as f:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        return read_response(f)


def cpu_seconds(pid):
    """user + system CPU time of process `pid` (one worker: the server itself)."""
    fields = pathlib.Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_rps(port, seconds, pid=None):
    """(requests/s, requests per CPU-second of `pid`) of one wrk run."""
    url = "http://127.0.0.1:%d/" % port
    cpu0 = cpu_seconds(pid) if pid else 0
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c64", "-d%ds" % seconds,
                          url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu0 if pid else 0
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), (
        total / cpu if cpu > 0 else 0.0)


def request_path(opts, workdir):
    rps = {False: [], True: []}
    per_cpu = {False: [], True: []}
    for run in range(opts.runs):
        for metrics in (False, True):
            s = Saltare(opts.saltare, workdir, 1, metrics)
            try:
                wrk_rps(s.port, 2)
                r, c = wrk_rps(s.port, opts.duration, s.proc.pid)
                rps[metrics].append(r)
                per_cpu[metrics].append(c)
            finally:
                s.stop()
            print("run %d metrics %-3s %8.0f rps %8.0f req/CPU-s" % (
                run + 1, "on" if metrics else "off", r, c), file=sys.stderr)
    for name, d in (("requests/s", rps), ("requests per CPU-second", per_cpu)):
        off, on = statistics.median(d[False]), statistics.median(d[True])
        print("| hello, 1 worker: %s, metrics off | %.0f |" % (name, off))
        print("| hello, 1 worker: %s, metrics on | %.0f |" % (name, on))
        print("| %s ratio on/off | %.3f (%+.1f%%) |" % (name, on / off, (on / off - 1) * 100))


def render_time(opts, workdir):
    s = Saltare(opts.saltare, workdir, 4, True)
    try:
        # a request mix over fresh connections (spread over the workers)
        for i in range(200):
            get(s.port, "/" if i % 4 else "/x?y=%d" % i)
        times, size = [], 0
        with socket.create_connection(("127.0.0.1", s.metrics_port)) as c, \
                c.makefile("rb") as f:
            for _ in range(opts.scrapes):
                t0 = time.perf_counter()
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                status, body = read_response(f)
                times.append(time.perf_counter() - t0)
                assert status == 200, status
                size = len(body)
        times.sort()
        print("| metrics page, 4 workers: median time (ms) | %.3f |" % (
            statistics.median(times) * 1e3))
        print("| metrics page, 4 workers: p99 time (ms) | %.3f |" % (
            times[int(len(times) * 0.99) - 1] * 1e3))
        print("| metrics page size (bytes) | %d |" % size)
    finally:
        s.stop()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--saltare", default=str(ROOT / "bazel-bin" / "saltare"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--scrapes", type=int, default=500)
    opts = p.parse_args(argv)
    if not os.access(opts.saltare, os.X_OK):
        raise SystemExit("no saltare binary at %s (bazel build //:saltare)" % opts.saltare)
    with tempfile.TemporaryDirectory() as workdir:
        print("| metric | value |\n|---|---:|")
        request_path(opts, workdir)
        render_time(opts, workdir)


if __name__ == "__main__":
    main(sys.argv[1:])
