"""Byte ranges: which part of a file a request's Range header asks for (RFC 9110 §14).

Pure, no I/O: the HTTP server hands over the header's value and the file's
size and learns what to send.  What RFC 9110 leaves to the server, decided:

- one range (`a-b`, `a-`, `-n`) is honoured: 206 with Content-Range.  That
  is what a booting node resuming an interrupted image download asks for.
- a malformed header, another unit than `bytes`, a range whose last byte
  comes before its first, or several ranges: the header is ignored and the
  whole file is sent with 200 (§14.2: a server MAY ignore Range).  Serving
  several ranges would need multipart/byteranges bodies, more code for no
  client we serve, and a way to make one request cost many.
- a range starting at or past the end of the file, or the last 0 bytes:
  416 with `Content-Range: bytes */<size>` (§15.5.17).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SINGLE_RANGE = re.compile(r"bytes=[ \t]*(\d*)-(\d*)[ \t]*", re.ASCII | re.IGNORECASE)
# More digits than any file size has; longer numbers are read as "too big"
# rather than converted (Python refuses to convert thousands of digits).
MAX_DIGITS = 18
TOO_BIG = 10**MAX_DIGITS


class Unsatisfiable(Exception):
    """The range asked for lies wholly past the end of the file: answer 416."""


@dataclass(frozen=True)
class ByteRange:
    """Bytes start up to (not including) stop of a file."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start

    def content_range(self, size: int) -> str:
        """The Content-Range value of a 206 response carrying this range."""
        return f"bytes {self.start}-{self.stop - 1}/{size}"


def unsatisfied_content_range(size: int) -> str:
    """The Content-Range value of a 416 response (§14.4)."""
    return f"bytes */{size}"


def parse_range(value: str | None, size: int) -> ByteRange | None:
    """The one range `value` asks for in a file of `size` bytes.

    None means "send the whole file" (no header, or one to ignore, as the
    module docstring lists); raises Unsatisfiable for a 416.
    """
    match = SINGLE_RANGE.fullmatch(value) if value is not None else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        return _suffix(last, size) if last else None
    start = _number(first)
    if last and _number(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    stop = min(_number(last) + 1, size) if last else size
    return ByteRange(start, stop)


def _suffix(digits: str, size: int) -> ByteRange | None:
    """The last `digits` bytes: all of a shorter file (§14.1.2)."""
    length = _number(digits)
    if length == 0:
        raise Unsatisfiable
    if size == 0:
        return None  # every byte of an empty file is no byte: send it whole
    return ByteRange(max(0, size - length), size)


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= MAX_DIGITS else TOO_BIG
