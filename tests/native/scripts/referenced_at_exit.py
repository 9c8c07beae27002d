"""Memory live at exit, referenced and lost (tests/native/test_referenced_at_exit.py).

argv[1]: a C library with helper_malloc (a malloc the hooks see; tests/native/conftest.py).
"""

import ctypes
import gc
import sys

lib = ctypes.CDLL(sys.argv[1])
lib.helper_malloc.restype = ctypes.c_void_p
lib.helper_malloc.argtypes = [ctypes.c_size_t]


class Registry:
    entries: dict[int, bytearray] = {}


def lose_buffer():
    # the pointer is dropped
    lib.helper_malloc(100_000)  # @lost_malloc


def lose_cycle():
    # a cycle the collector never frees
    pair = [bytearray(1000)]  # @cycle
    pair.append(pair)


def register():
    for i in range(10):
        Registry.entries[i] = bytearray(2000)  # @class_attribute


gc.disable()
data = [bytearray(1000) for _ in range(100)]  # @module_global
lose_buffer()
lose_cycle()
register()
