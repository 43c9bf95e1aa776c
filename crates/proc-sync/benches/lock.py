"""Python's multiprocessing.Lock in the same shape as lock.rs: uncontended acquire+release
(ns per pair) and a 2-process contended counter (total increments per second), median and
best of 7 rounds."""
import multiprocessing as mp
import time

ROUNDS = 7
PAIRS = 1_000_000
CONTENDED_EACH = 200_000


def report(name, unit, one_round):
    one_round()
    results = sorted(one_round() for _ in range(ROUNDS))
    median = results[ROUNDS // 2]
    best = results[0] if unit == "ns" else results[-1]
    print(f"{name:<44} median {median:>12.1f} {unit}   best {best:>12.1f} {unit}   ({ROUNDS} rounds)")


def uncontended(lock):
    acquire, release = lock.acquire, lock.release
    start = time.perf_counter()
    for _ in range(PAIRS):
        acquire()
        release()
    return (time.perf_counter() - start) * 1e9 / PAIRS


def increment(lock, counter, go):
    go.wait()
    for _ in range(CONTENDED_EACH):
        with lock:
            counter.value += 1


def contended(ctx, lock):
    counter = ctx.RawValue("Q", 0)
    go = ctx.Event()
    children = [ctx.Process(target=increment, args=(lock, counter, go)) for _ in range(2)]
    for p in children:
        p.start()
    start = time.perf_counter()
    go.set()
    for p in children:
        p.join()
    elapsed = time.perf_counter() - start
    assert counter.value == 2 * CONTENDED_EACH
    return 2 * CONTENDED_EACH / elapsed


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    lock = ctx.Lock()
    report("python multiprocessing.Lock acquire+release", "ns", lambda: uncontended(lock))
    report("python 2-process contended counter", "incr/s", lambda: contended(ctx, lock))
