import pytest

from memlens.units import format_bytes, parse_size


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (10 * 2**20, "10.0 MiB"),
        (3 * 2**30 + 2**29, "3.5 GiB"),
        (-2048, "-2.0 KiB"),
    ],
)
def test_format_bytes(size, text):
    assert format_bytes(size) == text


# pytest-memray's units: KB..PB are binary, as its users wrote their limits.
@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10 MB", 10_485_760),
        ("10MiB", 10_485_760),
        ("1.5 gib", 1_610_612_736),
        ("24 mb", 25_165_824),
        ("100", 100),
        ("512 B", 512),
        (" 2 KB ", 2048),
        ("2 kib", 2048),
        ("+3 KiB", 3072),
        ("1 GB", 1_073_741_824),
        ("1 TB", 1_099_511_627_776),
        ("1 PB", 1_125_899_906_842_624),
        ("1 PiB", 1_125_899_906_842_624),
        (".5 KB", 512),
        (4096, 4096),
        (0, 0),
    ],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "expected a number and a unit"),
        ("MB", "expected a number and a unit"),
        ("-1 MB", "expected a number and a unit"),
        ("ten MB", "expected a number and a unit"),
        ("1e3 MB", "expected a number and a unit"),
        (None, "expected a number and a unit"),
        (True, "expected a number and a unit"),
        (1.5, "expected a number and a unit"),
        ("10 parsecs", "unknown unit 'parsecs'"),
        ("1 EB", "unknown unit 'EB'"),
        (-5, "cannot be negative"),
    ],
)
def test_parse_size_rejects(text, why):
    with pytest.raises(ValueError, match="invalid size") as error:
        parse_size(text)
    assert why in str(error.value)
