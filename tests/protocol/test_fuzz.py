"""Fuzzing the protocol's parsers: whatever bytes or MessagePack values a peer
sends, the frame decoder and the message parsers either give a message or
raise ProtocolError — never any other exception, and never slowly."""

from __future__ import annotations

import contextlib

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st
from xcat_protocol.errors import ProtocolError
from xcat_protocol.framing import FrameDecoder, encode_frame
from xcat_protocol.messages import RequestBody, parse_client_message, parse_server_message

FUZZ = settings(max_examples=200, deadline=2000)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text()
    | st.binary()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=40,
)
# Maps shaped like the protocol's, with its keys and arbitrary values.
KEYS = ["t", "id", "body", "sig", "chain", "data", "kind", "text", "node", "rc", "cmd", "args"]
KEYS += ["user", "ts", "nonce", "noderange", "stdin", "stdin_sha256", "cwd", "env", "what"]
KEYS += ["protocol", "server", "version"]
protocol_maps = st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=4), values, max_size=12
) | st.fixed_dictionaries(
    {"t": st.sampled_from(["req", "cancel", "stdin", "out", "progress", "done", "hello"])},
    optional={key: values for key in KEYS[1:]},
)


def decoded(data: bytes, chunks: list[int]) -> list:
    decoder = FrameDecoder(max_frame=1 << 16)
    messages, start = [], 0
    for size in [*chunks, len(data)]:
        messages += decoder.messages(data[start : start + size])
        start += size
    return messages


@FUZZ
@given(st.binary(max_size=4096), st.lists(st.integers(1, 64), max_size=16))
def test_arbitrary_bytes_in_arbitrary_pieces(data, chunks):
    with contextlib.suppress(ProtocolError):
        decoded(data, chunks)


@FUZZ
@given(protocol_maps)
def test_arbitrary_maps_as_client_and_server_messages(message):
    (raw,) = FrameDecoder().messages(encode_frame(message))
    for parse in (parse_client_message, parse_server_message):
        with contextlib.suppress(ProtocolError):
            parse(raw)


@FUZZ
@given(values)
def test_arbitrary_values_as_a_frame(value):
    payload = msgpack.packb(value, use_bin_type=True)
    with contextlib.suppress(ProtocolError):
        decoded(len(payload).to_bytes(4, "big") + payload, [])


@FUZZ
@given(protocol_maps | values)
def test_arbitrary_request_bodies(value):
    with contextlib.suppress(ProtocolError):
        RequestBody.decode(msgpack.packb(value, use_bin_type=True))
