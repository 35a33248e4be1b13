"""Frames: 4-byte big-endian length, then one MessagePack map."""

import struct

import msgpack
import pytest
from xcat_protocol.errors import ProtocolError
from xcat_protocol.framing import FrameDecoder, encode_frame


def test_a_frame_round_trips_fed_one_byte_at_a_time():
    frame = encode_frame({"t": "done", "id": 7, "rc": 0})
    decoder = FrameDecoder()
    received = []
    for byte in frame:
        received += decoder.messages(bytes([byte]))
    assert received == [{"t": "done", "id": 7, "rc": 0}]
    assert decoder.pending == 0


def test_several_frames_in_one_read_all_come_out_in_order():
    data = b"".join(encode_frame({"n": n}) for n in range(5))
    assert FrameDecoder().messages(data) == [{"n": n} for n in range(5)]


def test_a_partial_frame_waits_for_the_rest():
    frame = encode_frame({"text": "x" * 100})
    decoder = FrameDecoder()
    assert decoder.messages(frame[:50]) == []
    assert decoder.pending == 50
    assert decoder.messages(frame[50:]) == [{"text": "x" * 100}]


def test_an_oversized_frame_is_refused_as_soon_as_its_length_is_known():
    decoder = FrameDecoder(max_frame=1024)
    with pytest.raises(ProtocolError, match="frame of 1025 bytes is over the 1024-byte limit"):
        decoder.messages(struct.pack(">I", 1025))


def test_malformed_messagepack_is_a_protocol_error():
    payload = b"\xc1\xc1\xc1"  # 0xc1 is never used in MessagePack
    with pytest.raises(ProtocolError, match="malformed MessagePack"):
        FrameDecoder().messages(struct.pack(">I", len(payload)) + payload)


def test_a_frame_that_is_not_a_map_is_refused():
    payload = msgpack.packb([1, 2, 3])
    with pytest.raises(ProtocolError, match="must hold a MessagePack map, not list"):
        FrameDecoder().messages(struct.pack(">I", len(payload)) + payload)


def test_a_claimed_huge_string_cannot_make_the_decoder_allocate_it():
    # A str32 header claiming 1 GiB, with 3 bytes behind it.
    payload = b"\x81\xa1k\xdb" + struct.pack(">I", 2**30) + b"abc"
    with pytest.raises(ProtocolError):
        FrameDecoder().messages(struct.pack(">I", len(payload)) + payload)


def test_extension_types_are_not_part_of_the_protocol():
    payload = msgpack.packb({"x": msgpack.ExtType(5, b"zz")})
    with pytest.raises(ProtocolError, match="extension type 5"):
        FrameDecoder().messages(struct.pack(">I", len(payload)) + payload)


def test_map_keys_must_be_strings():
    payload = msgpack.packb({1: "one"})
    with pytest.raises(ProtocolError):
        FrameDecoder().messages(struct.pack(">I", len(payload)) + payload)


def test_a_frame_of_millions_of_empty_arrays_is_refused_before_it_is_built():
    count = (16 << 20) - 5
    payload = b"\xdd" + struct.pack(">I", count) + b"\x90" * count
    with pytest.raises(ProtocolError, match="malformed MessagePack"):
        FrameDecoder().messages(struct.pack(">I", len(payload)) + payload)


def test_nested_arrays_within_each_limit_are_refused_by_their_total():
    # 256 arrays of 256 empty arrays: each array is short, together too many.
    inner = b"\xdc\x01\x00" + b"\x90" * 256
    payload = b"\xdc\x01\x00" + inner * 256
    with pytest.raises(ProtocolError, match="holds too many values"):
        FrameDecoder().messages(struct.pack(">I", len(payload)) + payload)
