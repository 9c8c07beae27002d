"""E2E fixture for "Profile this test": one test that holds 12 MiB on line 5."""


def test_holds_twelve_mebibytes():
    held = bytearray(12 * 2**20)
    assert len(held) == 12 * 2**20
