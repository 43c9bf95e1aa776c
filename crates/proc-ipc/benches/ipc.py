"""Python's multiprocessing.Queue and Pipe doing the workloads of ipc.rs beside this file,
item for item. Prints one JSON object per workload: {"workload", "value", "unit"}."""
import json
import multiprocessing as mp
import sys
import time

QUICK = "--quick" in sys.argv
SMALL = 20_000 if QUICK else 500_000
BIG = 50 if QUICK else 200
PINGS = 2_000 if QUICK else 10_000
MIB = 1 << 20


def report(workload, value, unit):
    print(json.dumps({"workload": workload, "value": value, "unit": unit}), flush=True)


def produce_small(q, n):
    for i in range(n):
        q.put((i, "sixteen bytes!!!"))


def consume_small(q, done):
    while True:
        item = q.get()
        if item is None:
            break
    done.put(1)


def small(producers, consumers):
    q = mp.Queue(1024)
    done = mp.Queue()
    per = SMALL // producers
    ps = [mp.Process(target=produce_small, args=(q, per)) for _ in range(producers)]
    cs = [mp.Process(target=consume_small, args=(q, done)) for _ in range(consumers)]
    start = time.perf_counter()
    for p in ps + cs:
        p.start()
    for p in ps:
        p.join()
    for _ in cs:
        q.put(None)
    for _ in cs:
        done.get()
    for c in cs:
        c.join()
    elapsed = time.perf_counter() - start
    report(f"queue small items {producers}->{consumers}", per * producers / elapsed, "items/s")


def produce_big(q, n):
    buf = bytes(MIB)
    for _ in range(n):
        q.put(buf)


def big():
    q = mp.Queue(16)
    p = mp.Process(target=produce_big, args=(q, BIG))
    start = time.perf_counter()
    p.start()
    for _ in range(BIG):
        assert len(q.get()) == MIB
    p.join()
    elapsed = time.perf_counter() - start
    report("queue 1 MiB items 1->1", BIG * MIB / elapsed / MIB, "MiB/s")


def echo_pipe(conn, n):
    for _ in range(n):
        conn.send(conn.recv())


def pipe_ping_pong():
    a, b = mp.Pipe()
    p = mp.Process(target=echo_pipe, args=(b, PINGS))
    p.start()
    start = time.perf_counter()
    for i in range(PINGS):
        a.send(i)
        a.recv()
    elapsed = time.perf_counter() - start
    p.join()
    report("ping-pong over a pipe", elapsed / PINGS * 1e6, "us/round trip")


def echo_queues(inq, outq, n):
    for _ in range(n):
        outq.put(inq.get())


def queue_ping_pong():
    there, back = mp.Queue(1), mp.Queue(1)
    p = mp.Process(target=echo_queues, args=(there, back, PINGS))
    p.start()
    start = time.perf_counter()
    for i in range(PINGS):
        there.put(i)
        back.get()
    elapsed = time.perf_counter() - start
    p.join()
    report("ping-pong over two queues", elapsed / PINGS * 1e6, "us/round trip")


if __name__ == "__main__":
    mp.set_start_method("fork")
    small(1, 1)
    small(2, 2)
    big()
    pipe_ping_pong()
    queue_ping_pong()
