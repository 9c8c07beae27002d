"""A fork Pool(2) whose workers allocate; then closed and joined (the workers exit normally), or
left by `with` (terminate: SIGTERM) while both workers are busy in a task."""

import json
import multiprocessing
import os
import sys
import time

context = multiprocessing.get_context("fork")
started = context.SimpleQueue()  # inherited by the workers
kept = []


def work(size: int) -> int:
    kept.append(bytearray(size))  # @work
    return os.getpid()


def hold(_: int) -> None:
    started.put(os.getpid())
    time.sleep(60)


if __name__ == "__main__":
    pool = context.Pool(2)
    workers = [process.pid for process in pool._pool]
    with pool:
        served = set(pool.map(work, [2**16] * 40, chunksize=1))
        if sys.argv[1] == "close":
            pool.close()
            pool.join()
        else:
            pool.map_async(hold, [0, 1], chunksize=1)
            assert {started.get(), started.get()} == set(workers)
    print(json.dumps({"workers": workers, "served": sorted(served)}), flush=True)
