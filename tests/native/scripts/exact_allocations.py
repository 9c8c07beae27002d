"""Known allocations on marked lines (`# @name`), for the exact-value tests of `memlens run`."""

import sys


def make_buffer():
    return bytearray(10 * 2**20)  # @buffer


def grow_list(count):
    items = []
    capacities = [0] * count  # preallocated: recording does not allocate on the append line
    for i in range(count):
        items.append(None)  # @append
        capacities[i] = sys.getsizeof(items)
    return items, capacities


class Cache:
    entries = []  # a class attribute: everything remembered stays alive

    def remember(self, size):
        entry = bytearray(size)  # @leak
        self.entries.append(entry)


def churn(rounds):
    for _ in range(rounds):
        chunk = bytes(10_000)  # @temp
        del chunk


buffer = make_buffer()  # @call_buffer
items, capacities = grow_list(100_000)
cache = Cache()
for _ in range(200):
    cache.remember(65_536)
churn(1000)

# What the test compares with: every size the list's item array took, and the object sizes.
empty = sys.getsizeof([])
sizes = sorted({c - empty for c in capacities})
print("list_sizes", *sizes)
print("bytearray_65536", sys.getsizeof(bytearray(65_536)))
print("bytes_10000", sys.getsizeof(bytes(10_000)))
