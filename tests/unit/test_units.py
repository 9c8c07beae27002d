import pytest

from memlens.units import format_bytes, parse_size


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (10 * 2**20, "10.0 MiB"),
     (3 * 2**30 + 2**29, "3.5 GiB"), (-2048, "-2.0 KiB")],
)
def test_format_bytes(size, text):
    assert format_bytes(size) == text


@pytest.mark.parametrize(
    ("text", "size"),
    [("10 MB", 10_000_000), ("10MiB", 10 * 2**20), ("1.5 gib", 3 * 2**29), ("24 mb", 24_000_000),
     ("100", 100), ("512 B", 512), (" 2 KB ", 2000)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "10 parsecs", "ten MB", "-1 MB", "1e3 MB"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)
