"""Python's multiprocessing.Process start+join of a no-op process, with the fork start
method, in the same shape as start_join.rs: median and best of 7 rounds x 300 processes."""
import multiprocessing as mp
import time

ROUNDS, PER_ROUND = 7, 300


def noop():
    pass


def measure(name, ctx):
    def one():
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        assert p.exitcode == 0

    one()
    per = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        for _ in range(PER_ROUND):
            one()
        per.append((time.perf_counter() - t) / PER_ROUND)
    per.sort()
    print(f"{name:<34} median {per[ROUNDS // 2] * 1e6:8.1f} us   best {per[0] * 1e6:8.1f} us   ({ROUNDS} rounds x {PER_ROUND})")


if __name__ == "__main__":
    measure("python multiprocessing fork", mp.get_context("fork"))
