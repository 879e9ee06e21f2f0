"""Every way a FastAPI/Starlette/asyncio app hands work to a thread.

Each function that runs in a thread records its native thread id under a
kind; /stats reports how many distinct threads each kind used, the peak
number of sync endpoint calls running at once, and what ran after the
responses (dependency exits, background tasks). The loop's thread is the
process's main thread: its native id is the worker's pid.
"""

import asyncio
import collections
import sys
import threading
import time

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import BackgroundTasks, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

lock = threading.Lock()
seen: dict[str, set[int]] = collections.defaultdict(set)
events: list[str] = []
running = peak = 0


def record(kind: str) -> int:
    tid = threading.get_native_id()
    with lock:
        seen[kind].add(tid)
    return tid


def in_thread_at(phase: str) -> None:
    print(f"lifespan {phase} ran in thread {threading.get_native_id()}", flush=True)


app = FastAPI()


class HighWater(set):
    """anyio's limiter keeps its token holders in a set: this one records
    the most it ever held at once (what the limiter admitted)."""

    peak = 0

    def add(self, borrower):
        super().add(borrower)
        HighWater.peak = max(HighWater.peak, len(self))


@app.on_event("startup")
async def watch_the_limiter():
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter._borrowers = HighWater(limiter._borrowers)


@app.on_event("startup")
async def startup():
    await anyio.to_thread.run_sync(in_thread_at, "startup")


@app.on_event("shutdown")
async def shutdown():
    await anyio.to_thread.run_sync(in_thread_at, "shutdown")


@app.get("/sync")
def sync_endpoint(sleep_ms: int = 0):
    global running, peak
    with lock:
        running += 1
        peak = max(peak, running)
    try:
        time.sleep(sleep_ms / 1000)
        return {"tid": record("sync")}
    finally:
        with lock:
            running -= 1


@app.get("/slow")
def slow():
    print("slow: sleeping", flush=True)
    time.sleep(1)
    return {"tid": record("sync")}


async def loop_thread_id() -> int:
    await asyncio.sleep(0)
    return threading.get_native_id()


@app.get("/to_thread")
async def to_thread():
    def work():
        # anyio.from_thread: back onto the loop from the worker thread
        return record("to_thread"), anyio.from_thread.run(loop_thread_id)

    tid, back = await anyio.to_thread.run_sync(work)
    return {"tid": tid, "from_thread": back}


@app.get("/threadpool")
async def threadpool():
    return {"tid": await run_in_threadpool(record, "threadpool")}


def sync_dependency():
    events.append(f"enter {record('dependency')}")
    yield "value"
    events.append(f"exit {record('dependency')}")


@app.get("/dependency")
def with_dependency(value: str = Depends(sync_dependency)):
    return {"tid": record("sync"), "value": value}


def background_job(word: str) -> None:
    events.append(f"background {word} {record('background')}")


@app.get("/background")
def background(tasks: BackgroundTasks, word: str):
    tasks.add_task(background_job, word)
    return {"tid": record("sync")}


@app.get("/executor")
async def executor():
    loop = asyncio.get_running_loop()
    return {"tid": await loop.run_in_executor(None, record, "executor")}


@app.get("/asyncio_to_thread")
async def asyncio_to_thread():
    return {"tid": await asyncio.to_thread(record, "asyncio_to_thread")}


@app.get("/wait")
async def wait():
    print("waiting", flush=True)
    await asyncio.sleep(60)
    return {}


@app.get("/stats")
async def stats():
    with lock:
        tids = {kind: sorted(ids) for kind, ids in seen.items()}
    return {
        "threads": {kind: len(ids) for kind, ids in tids.items()},
        "tids": tids,
        "peak": peak,
        "limiter_tokens": anyio.to_thread.current_default_thread_limiter().total_tokens,
        "limiter_peak": HighWater.peak,
        "events": list(events),
        "anyio_workers": sum(t.name == "AnyIO worker thread" for t in threading.enumerate()),
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "python": sys.version_info[:2],
    }
