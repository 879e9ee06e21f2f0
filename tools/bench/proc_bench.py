"""Process-model figures: memory of 1, 2 and 4 workers, and reload time.

Usage
-----

    /usr/bin/python3 tools/bench/proc_bench.py [--saltare PATH] [--reloads N] [--out FILE]

With the FastAPI app (tools/bench/apps/fastapi_app.py), for `workers` 1, 2 and 4 and
`app.preload` on and off, it starts saltare, waits until every worker is ready (the
master's "N workers [gen 1]" line), sends 200 requests over new connections, and reports
the total Pss of the tree (master and workers: /proc/PID/smaps_rollup, summed, once two
readings 100 ms apart agree) and its ratio to one worker with the same preload. The
issue's target: 4 workers <= 1.4x one worker with preload.

Then, with 2 workers and preload on, it sends SIGHUP --reloads times (default 5) and
reports the time from SIGHUP to the new generation serving: the master's own figure
("reload: generation N ready X s after SIGHUP": every new worker finished lifespan
startup, the old ones are told to drain), and the same seen from outside (from sending
SIGHUP until that line is in the log, polled every 5 ms).
Target: < 2 s for the FastAPI app. Requests keep going on new connections throughout;
any failure is counted and reported.

Nothing is pinned; run it on an idle machine for stable figures.
"""

import argparse
import http.client
import json
import os
import pathlib
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = ROOT / "tools" / "bench" / "apps"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            todo += [int(p) for p in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            pass
    return pids


def pss_kib(pid: int) -> int:
    try:
        for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def settled_pss(root: int) -> int:
    prev = sum(pss_kib(p) for p in proc_tree(root))
    for _ in range(30):
        time.sleep(0.1)
        cur = sum(pss_kib(p) for p in proc_tree(root))
        if abs(cur - prev) <= max(8, prev // 500):
            return cur
        prev = cur
    return prev


class Server:
    def __init__(self, binary: str, workers: int, preload: str, directory: pathlib.Path):
        self.port = free_port()
        self.log = directory / f"w{workers}-{preload}.log"
        config = directory / f"w{workers}-{preload}.yaml"
        config.write_text(json.dumps({
            "app": {"target": "fastapi_app:app", "path": [str(APPS)], "preload": preload},
            "workers": workers,
            "listeners": [{"tcp": f"127.0.0.1:{self.port}"}],
            "log": {"access": "off"},
        }))
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([binary, "-c", str(config)], stdout=out,
                                         stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern: str, after: int = 0, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text()[after:])
            if m:
                return m
            if self.proc.poll() is not None:
                raise RuntimeError(f"saltare exited:\n{self.text()}")
            time.sleep(0.005)
        raise RuntimeError(f"no {pattern!r}:\n{self.text()}")

    def get(self) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/items/5?q=x")
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def memory(binary: str, directory: pathlib.Path) -> list[tuple[int, str, int]]:
    rows = []
    for preload in ("on", "off"):
        for workers in (1, 2, 4):
            s = Server(binary, workers, preload, directory)
            try:
                s.wait_log(r"\d workers? \[gen 1\]")
                for _ in range(200):
                    assert s.get() == 200
                rows.append((workers, preload, settled_pss(s.proc.pid)))
            finally:
                s.stop()
    return rows


def reloads(binary: str, directory: pathlib.Path, n: int) -> tuple[list[float], list[float], int, int]:
    s = Server(binary, 2, "on", directory)
    master_s, client_s = [], []
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}

    def load():
        while not stop.is_set():
            try:
                counts["ok" if s.get() == 200 else "failed"] += 1
            except OSError:
                counts["failed"] += 1

    try:
        s.wait_log(r"\d workers? \[gen 1\]")
        t = threading.Thread(target=load)
        t.start()
        for gen in range(2, n + 2):
            mark = len(s.text())
            t0 = time.monotonic()
            os.kill(s.proc.pid, signal.SIGHUP)
            while f"generation {gen} ready" not in s.text()[mark:]:
                time.sleep(0.005)
            client_s.append(time.monotonic() - t0)
            m = s.wait_log(rf"reload: generation {gen} ready ([\d.]+) s after SIGHUP", mark)
            master_s.append(float(m.group(1)))
            s.wait_log(r"drained and exited", mark)
            s.wait_log(r"drained and exited(.|\n)*drained and exited", mark)
        stop.set()
        t.join()
    finally:
        stop.set()
        s.stop()
    return master_s, client_s, counts["ok"], counts["failed"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--saltare", default=str(ROOT / "bazel-bin" / "saltare"))
    ap.add_argument("--reloads", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args()
    out = []
    with tempfile.TemporaryDirectory(prefix="proc-bench-") as d:
        directory = pathlib.Path(d)
        rows = memory(args.saltare, directory)
        base = {p: kib for w, p, kib in rows if w == 1}
        out.append("| workers | app.preload | total Pss (MiB) | vs 1 worker |")
        out.append("|---|---|---|---|")
        for workers, preload, kib in rows:
            out.append(f"| {workers} | {preload} | {kib / 1024:.1f} | {kib / base[preload]:.2f}x |")
        master_s, client_s, ok, failed = reloads(args.saltare, directory, args.reloads)
    out.append("")
    out.append(f"SIGHUP to new generation ready, {len(master_s)} reloads, 2 workers, preload on "
               f"(FastAPI app): master median {statistics.median(master_s):.2f} s "
               f"(max {max(master_s):.2f} s); seen from outside median "
               f"{statistics.median(client_s):.2f} s (max {max(client_s):.2f} s); "
               f"requests during the reloads: {ok} ok, {failed} failed")
    text = "\n".join(out)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
