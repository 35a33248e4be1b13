"""Length-prefixed MessagePack frames.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of
MessagePack holding exactly one map.  `FrameDecoder` is fed whatever bytes
arrive and hands back complete messages; `encode_frame` does the reverse.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from .errors import ProtocolError

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
# Values held in all the arrays and maps of one message together.  With the
# frame limit this bounds what decoding a hostile frame can allocate: 16 MiB
# of one-byte empty arrays would otherwise become 16 million Python lists.
DEFAULT_MAX_ITEMS = 1 << 16
_LENGTH = struct.Struct(">I")


def encode_frame(message: dict[str, Any]) -> bytes:
    """Serialise one message map into a frame ready to send."""
    payload: bytes = msgpack.packb(message, use_bin_type=True)
    return _LENGTH.pack(len(payload)) + payload


def unpack_map(
    payload: bytes, what: str = "frame", max_items: int = DEFAULT_MAX_ITEMS
) -> dict[str, Any]:
    """Unpack MessagePack that must hold one map with string keys.

    `unpackb` caps every string and binary at the length of the input and
    nesting at msgpack's stack depth; `_ItemBudget` caps the values of all
    arrays and maps together, so a hostile payload cannot make us allocate
    much more than its size.
    """
    budget = _ItemBudget(max_items, what)
    try:
        value = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            ext_hook=_no_ext,
            max_array_len=max_items,
            max_map_len=max_items,
            list_hook=budget.array,
            object_hook=budget.map,
        )
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"malformed MessagePack in {what}: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must hold a MessagePack map, not {type(value).__name__}")
    if not all(isinstance(key, str) for key in value):
        raise ProtocolError(f"{what} map keys must be strings")
    return value


class _ItemBudget:
    """Counts the values of every array and map as msgpack completes them,
    and stops the decoding once a message holds more than `limit`."""

    def __init__(self, limit: int, what: str) -> None:
        self.left = limit
        self.what = what

    def array(self, items: list[Any]) -> list[Any]:
        self._spend(len(items))
        return items

    def map(self, items: dict[Any, Any]) -> dict[Any, Any]:
        self._spend(len(items))
        return items

    def _spend(self, count: int) -> None:
        self.left -= count + 1
        if self.left < 0:
            raise ProtocolError(f"{self.what} holds too many values to be a protocol message")


def _no_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"MessagePack extension type {code} is not part of the protocol")


class FrameDecoder:
    """Incremental decoder: `feed()` bytes, then take messages from `next_message()`."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> None:
        self._buffer += data

    def next_message(self) -> dict[str, Any] | None:
        """The next complete message, or None until more bytes are fed.

        Raises ProtocolError for a frame over the size limit (as soon as its
        length is known, before its body arrives) or one that does not decode.
        """
        if len(self._buffer) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._buffer)
        if length > self.max_frame:
            raise ProtocolError(f"frame of {length} bytes is over the {self.max_frame}-byte limit")
        end = _LENGTH.size + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[_LENGTH.size : end])
        del self._buffer[:end]
        return unpack_map(payload)

    def messages(self, data: bytes | bytearray = b"") -> list[dict[str, Any]]:
        """Feed `data` and return every message that is now complete."""
        self.feed(data)
        out = []
        while (message := self.next_message()) is not None:
            out.append(message)
        return out

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)
