"""E2E fixture: a syntax error, so profiling it fails before anything is allocated."""


def broken(:
    return 1
