"""Facts about this interpreter's environment that the native tests' exact values depend on."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def numpy_data_domain() -> int:
    """The capture domain of numpy's array data: numpy 2.5 allocates it with PyMem_RawMalloc
    (a Python allocator domain, 0), earlier numpy with libc's malloc and calloc (1). numpy 2.5
    needs CPython 3.12+, so which one a venv gets depends on its Python."""
    import numpy as np

    major, minor = (int(part) for part in np.__version__.split(".")[:2])
    return 0 if (major, minor) >= (2, 5) else 1
