"""Python's multiprocessing.Process start+join of a no-op process under each start method,
in the same shape as start_join.rs: the median of 7 rounds, in microseconds per process.
Prints one JSON object per start method: {"workload", "value", "unit", "best"}."""
import json
import multiprocessing as mp
import time

ROUNDS = 7


def noop():
    pass


def main():
    # Spawn boots an interpreter per child (tens of ms): fewer per round. The rounds of the
    # three methods are taken in turns, as in start_join.rs.
    methods = [("fork", 300), ("spawn", 20), ("forkserver", 200)]
    contexts = {method: mp.get_context(method) for method, _ in methods}

    def one(method):
        p = contexts[method].Process(target=noop)
        p.start()
        p.join()
        assert p.exitcode == 0

    for method, _ in methods:
        one(method)  # warm up (and, for forkserver, start the server)
    rounds = {method: [] for method, _ in methods}
    for _ in range(ROUNDS):
        for method, per_round in methods:
            t = time.perf_counter()
            for _ in range(per_round):
                one(method)
            rounds[method].append((time.perf_counter() - t) / per_round)
    for method, _ in methods:
        per = sorted(rounds[method])
        print(json.dumps({
            "workload": f"start+join {method}",
            "value": per[ROUNDS // 2] * 1e6,
            "unit": "us/process",
            "best": per[0] * 1e6,
        }), flush=True)


if __name__ == "__main__":
    main()
