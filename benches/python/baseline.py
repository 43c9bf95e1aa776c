"""Python's multiprocessing doing each workload of `cargo xtask bench`, item for item as
benches/README.md defines them (benches/multiproc and benches/limits do the same work).

    python3 benches/python/baseline.py                   # every workload, full counts
    python3 benches/python/baseline.py --quick           # every workload, quick counts
    python3 benches/python/baseline.py --list            # the workloads, one a line
    python3 benches/python/baseline.py WORKLOAD COUNT    # one run of one workload

Prints one JSON line per run: {"workload", "impl": "python", "count", "seconds"}.
Everything runs under the fork start method, as multiproc does by default, except the
spawn_join workloads, one per start method.
"""
import array
import json
import multiprocessing as mp
import pathlib
import sys
import time
from multiprocessing import shared_memory

MIB = 1 << 20
FORK = mp.get_context("fork")
WORKLOADS_FILE = pathlib.Path(__file__).resolve().parent.parent / "workloads.txt"


def noop():
    pass


def spawn_join(method, count):
    """count no-op processes started and joined one after the other, after one untimed."""
    ctx = mp.get_context(method)

    def one():
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a no-op child exited with {p.exitcode}")

    one()  # imports, and under forkserver the server's start
    start = time.perf_counter()
    for _ in range(count):
        one()
    return time.perf_counter() - start


def produce(q, go, per, make):
    go.wait()
    for i in range(per):
        q.put(make(i))


def consume(q, received, check):
    n = 0
    while True:
        item = q.get()
        if item is None:
            break
        check(item)
        n += 1
    with received.get_lock():
        received.value += n


def small_item(i):
    return (i, "sixteen bytes!!!")


def check_small(item):
    assert len(item[1]) == 16


class OneMiB:
    """Makes the producer's one 1 MiB buffer once, and hands it out again and again."""

    def __init__(self):
        self.buf = bytes(MIB)

    def __call__(self, _i):
        return self.buf


def check_mib(buf):
    assert len(buf) == MIB


class Repeated:
    """Hands out one item, made once, again and again (as OneMiB, of any type)."""

    def __init__(self, item):
        self.item = item

    def __call__(self, _i):
        return self.item


def check_bytes_of_mib(item):
    assert len(item) * item.itemsize == MIB if isinstance(item, array.array) else len(item) == MIB


def queue_transfer(producers, consumers, maxsize, count, make, check):
    """producers put count items in all into a queue of maxsize; consumers get them until
    they get None, one of which main puts per consumer after joining the producers.
    Timed from the producers' start signal to the last join."""
    if count % producers:
        raise ValueError(f"COUNT must be a multiple of {producers}")
    per = count // producers
    q = FORK.Queue(maxsize)
    go = FORK.Event()
    received = FORK.Value("Q", 0)
    consuming = [FORK.Process(target=consume, args=(q, received, check)) for _ in range(consumers)]
    producing = [FORK.Process(target=produce, args=(q, go, per, make)) for _ in range(producers)]
    for p in consuming + producing:
        p.start()
    start = time.perf_counter()
    go.set()
    join_all(producing)
    for _ in consuming:
        q.put(None)
    join_all(consuming)
    elapsed = time.perf_counter() - start
    if received.value != count:
        raise RuntimeError(f"{received.value} items arrived of {count}")
    return elapsed


def join_all(processes):
    for p in processes:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"{p.name} exited with {p.exitcode}")


def echo_pipe(conn, count):
    for _ in range(count):
        conn.send(conn.recv())


def pingpong_pipe(count):
    here, there = FORK.Pipe()
    echo = FORK.Process(target=echo_pipe, args=(there, count))
    echo.start()
    start = time.perf_counter()
    for i in range(count):
        here.send(i)
        if here.recv() != i:
            raise RuntimeError("the echo sent back another value")
    elapsed = time.perf_counter() - start
    join_all([echo])
    return elapsed


def echo_queues(there, back, count):
    for _ in range(count):
        back.put(there.get())


def pingpong_queues(count):
    there, back = FORK.Queue(1), FORK.Queue(1)
    echo = FORK.Process(target=echo_queues, args=(there, back, count))
    echo.start()
    start = time.perf_counter()
    for i in range(count):
        there.put(i)
        if back.get() != i:
            raise RuntimeError("the echo sent back another value")
    elapsed = time.perf_counter() - start
    join_all([echo])
    return elapsed


def lock_uncontended(count):
    lock = FORK.Lock()
    acquire, release = lock.acquire, lock.release
    start = time.perf_counter()
    for _ in range(count):
        acquire()
        release()
    return time.perf_counter() - start


def increment(lock, counter, go, per):
    go.wait()
    for _ in range(per):
        with lock:
            counter.value += 1


def lock_contended(count):
    """Two processes add 1 to a shared u64 under one Lock, count / 2 times each."""
    if count % 2:
        raise ValueError("COUNT must be even")
    lock, counter, go = FORK.Lock(), FORK.RawValue("Q", 0), FORK.Event()
    children = [FORK.Process(target=increment, args=(lock, counter, go, count // 2)) for _ in range(2)]
    for p in children:
        p.start()
    start = time.perf_counter()
    go.set()
    join_all(children)
    elapsed = time.perf_counter() - start
    if counter.value != count:
        raise RuntimeError(f"the counter is {counter.value}, not {count}")
    return elapsed


def consume_joinable(q):
    while True:
        q.get()
        q.task_done()


def joinable_pipeline(count):
    """Main puts count ints into an unbounded JoinableQueue, two consumer processes get and
    task_done each, main joins. Timed from the first put to the end of join."""
    q = FORK.JoinableQueue()
    consumers = [FORK.Process(target=consume_joinable, args=(q,), daemon=True) for _ in range(2)]
    for c in consumers:
        c.start()
    start = time.perf_counter()
    for i in range(count):
        q.put(i)
    q.join()
    elapsed = time.perf_counter() - start
    for c in consumers:  # their get() never ends: Python has no close() for consumers
        c.terminate()
        c.join()
    return elapsed


def double(x):
    return x * 2


def pool_map(count, warm_ups=(1_000,)):
    """Pool.map of double over range(count) on a pool of 2 workers made (and warmed up by a
    map over range(n) for each n of warm_ups) beforehand, with the default chunksize."""
    with FORK.Pool(2) as pool:
        for warm_up in warm_ups:
            pool.map(double, range(warm_up))
        start = time.perf_counter()
        results = pool.map(double, range(count))
        elapsed = time.perf_counter() - start
    if len(results) != count or results[-1] != double(count - 1):
        raise RuntimeError("the map's results are wrong")
    return elapsed


def shm_attach_read_1mib(count):
    """Opens a 1 MiB block by name, copies all of it into a reused bytearray and closes it,
    count times (after one untimed), in one process. The block is made and filled in set-up
    and unlinked after. Opening registers the name with Python's resource tracker again (a
    set: still one entry), and the creator's unlink() unregisters it once: the tracker
    neither unlinks the block early nor complains."""
    block = shared_memory.SharedMemory(create=True, size=MIB)
    try:
        expected = bytes(i % 251 for i in range(MIB))  # no page is all zeros
        block.buf[:MIB] = expected
        buf = bytearray(MIB)

        def one():
            attached = shared_memory.SharedMemory(name=block.name)
            buf[:] = attached.buf
            attached.close()

        one()
        start = time.perf_counter()
        for _ in range(count):
            one()
        elapsed = time.perf_counter() - start
    finally:
        block.close()
        block.unlink()
    if buf != expected:
        raise RuntimeError("the bytes read are not those written")
    return elapsed


def shm_create_unlink(count):
    """Creates a 4 KiB block under a fresh name, writes 8 bytes into it, unlinks and closes
    it, count times after one untimed (which starts the resource tracker)."""

    def one(i):
        block = shared_memory.SharedMemory(create=True, size=4096)
        block.buf[:8] = i.to_bytes(8, "little")
        block.unlink()
        block.close()

    one(0)
    start = time.perf_counter()
    for i in range(count):
        one(i)
    return time.perf_counter() - start

def add(x, y):
    return x + y


def pool_starmap(count):
    """Pool.starmap of add over the pairs (i, i) of range(count) on a pool of 2 workers made
    (and warmed up by a starmap over 1,000 pairs) beforehand, with the default chunksize."""
    with FORK.Pool(2) as pool:
        pool.starmap(add, ((i, i) for i in range(1_000)))
        start = time.perf_counter()
        results = pool.starmap(add, ((i, i) for i in range(count)))
        elapsed = time.perf_counter() - start
    if len(results) != count or results[-1] != double(count - 1):
        raise RuntimeError("the starmap's results are wrong")
    return elapsed


def executor_submit_result(count):
    """count round trips of submit(double, i).result(), one at a time, on a
    ProcessPoolExecutor of 2 workers made (and warmed up by 100 round trips) beforehand."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=FORK) as ex:
        for i in range(100):
            ex.submit(double, i).result()
        start = time.perf_counter()
        for i in range(count):
            if ex.submit(double, i).result() != double(i):
                raise RuntimeError("a task's result is wrong")
        elapsed = time.perf_counter() - start
    return elapsed

WORKLOADS = {
    "spawn_join:fork": lambda n: spawn_join("fork", n),
    "spawn_join:spawn": lambda n: spawn_join("spawn", n),
    "spawn_join:forkserver": lambda n: spawn_join("forkserver", n),
    "queue_small_1to1": lambda n: queue_transfer(1, 1, 1024, n, small_item, check_small),
    "queue_small_2to2": lambda n: queue_transfer(2, 2, 1024, n, small_item, check_small),
    "queue_1mib_1to1": lambda n: queue_transfer(1, 1, 16, n, OneMiB(), check_mib),
    "queue_1mib_vec_u8": lambda n: queue_transfer(1, 1, 16, n, Repeated(bytes(MIB)), check_bytes_of_mib),
    "queue_1mib_string": lambda n: queue_transfer(1, 1, 16, n, Repeated("x" * MIB), check_bytes_of_mib),
    "queue_1mib_vec_f64": lambda n: queue_transfer(
        1, 1, 16, n, Repeated(array.array("d", [0.5]) * (MIB // 8)), check_bytes_of_mib
    ),
    "queue_1mib_vec_u32": lambda n: queue_transfer(
        1, 1, 16, n,
        Repeated(array.array("I", ((i * 2654435761) & 0xFFFFFFFF for i in range(MIB // 4)))),
        check_bytes_of_mib,
    ),
    "pingpong_pipe": pingpong_pipe,
    "pingpong_queues": pingpong_queues,
    "lock_uncontended": lock_uncontended,
    "lock_contended": lock_contended,
    "joinable_pipeline": joinable_pipeline,
    "pool_map": pool_map,
    "pool_map_reused": lambda n: pool_map(n, warm_ups=(n,)),
    "pool_map_steady": lambda n: pool_map(n, warm_ups=(n, n, n)),
    "shm_attach_read_1mib": shm_attach_read_1mib,
    "shm_create_unlink": shm_create_unlink,

    "pool_starmap": pool_starmap,
    "executor_submit_result": executor_submit_result,
}


def table_counts(quick):
    """{workload: count} from benches/workloads.txt (its quick column with quick)."""
    counts = {}
    for line in WORKLOADS_FILE.read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            counts[fields[0]] = int(fields[2] if quick else fields[1])
    return counts


def run(name, count):
    seconds = WORKLOADS[name](count)
    line = {"workload": name, "impl": "python", "count": count, "seconds": seconds}
    print(json.dumps(line), flush=True)


def main(args):
    usage = "usage: baseline.py [--quick] | --list | WORKLOAD COUNT"
    if args == ["--list"]:
        print("\n".join(WORKLOADS))
    elif args in ([], ["--quick"]):
        for name, count in table_counts(quick=bool(args)).items():
            run(name, count)
    elif len(args) == 2 and args[0] in WORKLOADS and args[1].isdigit() and int(args[1]) > 0:
        run(args[0], int(args[1]))
    else:
        sys.exit(usage)


if __name__ == "__main__":
    main(sys.argv[1:])
