"""Range headers against a file of 1000 bytes: what is sent for each."""

from __future__ import annotations

import pytest

from xcatd.boot.byteranges import ByteRange, Unsatisfiable, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=10-19", 10, 20),
        ("bytes=999-999", 999, 1000),
        ("bytes=990-", 990, 1000),
        ("bytes=0-", 0, 1000),
        ("bytes=-10", 990, 1000),
        ("bytes=500-5000", 500, 1000),  # the last byte past the end: up to the end
        ("bytes=-5000", 0, 1000),  # a suffix longer than the file: all of it
        ("BYTES=1-2", 1, 3),  # the unit is case-insensitive
        ("bytes= 1-2 ", 1, 3),
        ("bytes=5-" + "9" * 40, 5, 1000),  # a number too long to convert is just "huge"
    ],
)
def test_one_range_is_honoured(header: str, start: int, stop: int) -> None:
    assert parse_range(header, SIZE) == ByteRange(start, stop)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=",
        "bytes=-",
        "bytes=abc-def",
        "bytes=1-2-3",
        "bytes=20-10",  # last before first: invalid, ignored
        "bytes=0-1,5-6",  # several ranges: whole file rather than multipart
        "items=0-10",
        "bytes=0x10-20",
        "bytes=\u0661-2",  # a non-ASCII digit is no digit
    ],
)
def test_anything_else_means_the_whole_file(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0",
                                    "bytes=" + "9" * 5000 + "-"])  # fmt: skip
def test_ranges_past_the_end_are_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, SIZE)


def test_an_empty_file() -> None:
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=0-", 0)
    assert parse_range("bytes=-10", 0) is None


def test_content_range() -> None:
    assert ByteRange(10, 20).content_range(SIZE) == "bytes 10-19/1000"
    assert ByteRange(10, 20).length == 10
