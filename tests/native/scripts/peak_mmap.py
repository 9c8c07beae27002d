"""A run whose peak is in the middle (200 MiB allocated and freed between two small phases),
then a 64 MiB anonymous mmap that is unmapped again. Marked lines: `# @name`."""

import mmap

MiB = 2**20


def small_phase():
    return [bytearray(MiB) for _ in range(5)]  # @small


def big_phase():
    big = bytearray(200 * MiB)  # @big
    del big


def map_region():
    region = mmap.mmap(-1, 64 * MiB)  # @map
    region.close()


before = small_phase()
big_phase()  # @call_big
del before
after = small_phase()
map_region()
