"""A fork Pool(2) whose workers allocate; left by `with` (terminate) or closed and joined."""

import json
import multiprocessing
import os
import sys

kept = []


def work(size: int) -> int:
    kept.append(bytearray(size))  # @work
    return os.getpid()


if __name__ == "__main__":
    pool = multiprocessing.get_context("fork").Pool(2)
    workers = [process.pid for process in pool._pool]
    with pool:
        served = set(pool.map(work, [2**16] * 40, chunksize=1))
        if sys.argv[1] == "close":
            pool.close()
            pool.join()
    print(json.dumps({"workers": workers, "served": sorted(served)}), flush=True)
