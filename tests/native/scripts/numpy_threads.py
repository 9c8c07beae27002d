"""numpy arrays from the main thread and from a worker that releases the GIL, and four threads
allocating at the same time. Allocations sit on marked lines (`# @name`)."""

import sqlite3
import threading

import numpy as np

MiB = 2**20


def in_worker(keep):
    keep.append(np.zeros(100 * MiB, dtype=np.uint8))  # @worker_zeros
    keep.append(np.ones(100 * MiB, dtype=np.uint8))  # @worker_ones
    # sqlite builds the blob inside sqlite3_step, with the GIL released.
    db = sqlite3.connect(":memory:")
    keep.append(db.execute("select randomblob(?)", (50 * MiB,)).fetchone())  # @worker_nogil
    db.close()


def work(size, count, keep):
    for i in range(count):
        keep[i] = bytearray(size)  # @work


zeros = np.zeros(100 * MiB, dtype=np.uint8)  # @zeros
ones = np.ones(100 * MiB, dtype=np.uint8)  # @ones
kept = []
worker = threading.Thread(target=in_worker, args=(kept,), name="numpy-worker")
worker.start()
worker.join()
del zeros, ones, kept

# Four threads at once, each with its own buffer size, all kept alive to the end.
sizes = {f"worker-{n}": n * 100_000 for n in (1, 2, 3, 4)}
buffers = {name: [None] * 200 for name in sizes}
start = threading.Barrier(4)


def run(name):
    start.wait()
    work(sizes[name], 200, buffers[name])


threads = [threading.Thread(target=run, args=(name,), name=name) for name in sizes]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
