"""Python's multiprocessing.JoinableQueue and Pool doing the workloads of patterns.rs beside
this file, item for item. Prints one JSON object per workload: {"workload", "value", "unit"}."""
import json
import multiprocessing as mp
import sys
import time

QUICK = "--quick" in sys.argv
PIPELINE = 20_000 if QUICK else 200_000
MAP = 20_000 if QUICK else 200_000
SMALL = 1_000 if QUICK else 10_000


def report(workload, value, unit):
    print(json.dumps({"workload": workload, "value": value, "unit": unit}), flush=True)


def double(x):
    return x * 2


def consume(q):
    while True:
        q.get()
        q.task_done()


def joinable_pipeline_once():
    q = mp.JoinableQueue()
    consumers = [mp.Process(target=consume, args=(q,), daemon=True) for _ in range(2)]
    for c in consumers:
        c.start()
    start = time.perf_counter()
    for i in range(PIPELINE):
        q.put(i)
    q.join()
    elapsed = time.perf_counter() - start
    for c in consumers:
        c.terminate()
        c.join()
    return PIPELINE / elapsed


def best_of_3(run):
    return max(run() for _ in range(3))


def pool_map(pool, n, chunksize=None):
    start = time.perf_counter()
    results = pool.map(double, range(n), chunksize)
    elapsed = time.perf_counter() - start
    assert len(results) == n and results[-1] == double(n - 1)
    return n / elapsed


if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(2) as pool:
        pool_map(pool, 1_000)
        mapped = best_of_3(lambda: pool_map(pool, MAP))
        small = best_of_3(lambda: pool_map(pool, SMALL, 1))
    joinable = best_of_3(joinable_pipeline_once)
    report(f"joinable pipeline {PIPELINE}", joinable, "items/s")
    report(f"pool.map {MAP}", mapped, "tasks/s")
    report(f"pool.map {SMALL}, chunksize 1", small, "tasks/s")
