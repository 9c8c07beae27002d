"""Facts about this interpreter's environment that the native tests' exact values depend on."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from typing import Any

import pytest


@pytest.fixture(scope="session")
def numpy_data_domain() -> int:
    """The capture domain of numpy's array data: numpy 2.5 allocates it with PyMem_RawMalloc
    (a Python allocator domain, 0), earlier numpy with libc's malloc and calloc (1). numpy 2.5
    needs CPython 3.12+, so which one a venv gets depends on its Python."""
    import numpy as np

    major, minor = (int(part) for part in np.__version__.split(".")[:2])
    return 0 if (major, minor) >= (2, 5) else 1


HELPERS_C = """
#include <stdlib.h>
#include <sys/prctl.h>
void* helper_valloc(size_t size) { return valloc(size); }
int helper_set_thread_name(const char* name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }
void* helper_malloc(size_t size) { return malloc(size); }
void helper_free(void* p) { free(p); }
"""


@pytest.fixture(scope="module")
def clib(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """C allocations through a PLT the hooks patch (ctypes calls libc's own symbols directly,
    which no in-process hook sees)."""
    if shutil.which("gcc") is None:
        pytest.skip("needs a C compiler")
    folder = tmp_path_factory.mktemp("clib")
    (folder / "helpers.c").write_text(HELPERS_C)
    library = folder / "libhelpers.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O0", "-o", str(library), str(folder / "helpers.c")],
        check=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.helper_valloc.restype = ctypes.c_void_p
    lib.helper_valloc.argtypes = [ctypes.c_size_t]
    lib.helper_malloc.restype = ctypes.c_void_p
    lib.helper_malloc.argtypes = [ctypes.c_size_t]
    lib.helper_free.argtypes = [ctypes.c_void_p]
    lib.helper_set_thread_name.argtypes = [ctypes.c_char_p]
    return lib
