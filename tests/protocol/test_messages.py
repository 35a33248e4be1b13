"""Every message has one shape; anything else is refused with a reason."""

import os

import pytest
from xcat_protocol.errors import ProtocolError
from xcat_protocol.messages import (
    Cancel,
    Done,
    ErrorFrame,
    Hello,
    Output,
    Progress,
    Request,
    RequestBody,
    StdinData,
    parse_client_message,
    parse_server_message,
)


def body(**changes) -> RequestBody:
    fields = dict(cmd="lsdef", args=["-t", "node"], user="root", ts=1, nonce=os.urandom(16))
    fields.update(changes)
    return RequestBody(**fields)


@pytest.mark.parametrize(
    "message",
    [
        Request(1, b"body", b"sig"),
        Request(2, b"body", b"sig", (b"cert1", b"cert2")),
        Cancel(3),
        StdinData(4, b"input"),
    ],
)
def test_client_messages_round_trip(message):
    assert parse_client_message(message.to_wire()) == message


@pytest.mark.parametrize(
    "message",
    [
        Hello("mn1", "0.1.0"),
        Output(1, "info", text="hello"),
        Output(1, "data", node="node01", data={"status": "booted"}),
        Progress(1, "copying", 10, 100, "bytes"),
        Progress(1, "scanning", 10, None, "files"),
        Done(1, 0),
        ErrorFrame("bad"),
    ],
)
def test_server_messages_round_trip(message):
    assert parse_server_message(message.to_wire()) == message


def test_a_request_body_round_trips_byte_for_byte():
    original = body(noderange="compute", stdin=b"node01:\n", cwd="/root", env={"XCAT_X": "1"})
    encoded = original.encode()
    assert RequestBody.decode(encoded) == original
    assert RequestBody.decode(encoded).encode() == encoded


@pytest.mark.parametrize(
    ("wire", "complaint"),
    [
        ({"t": "req", "id": 1, "sig": b"s"}, "'req' message is missing 'body'"),
        ({"t": "req", "id": -1, "body": b"", "sig": b""}, "bad 'id'"),
        ({"t": "req", "id": "1", "body": b"", "sig": b""}, "bad 'id'"),
        ({"t": "req", "id": 1, "body": "text", "sig": b""}, "bad 'body'"),
        ({"t": "req", "id": 1, "body": b"", "sig": b"", "chain": ["pem"]}, "bad 'chain'"),
        ({"t": "cancel"}, "'cancel' message is missing 'id'"),
        ({"t": "stdin", "id": 1, "data": "text"}, "bad 'data'"),
        ({"t": "shutdown"}, "unknown message type 'shutdown'"),
        ({"id": 1}, "unknown message type None"),
    ],
)
def test_malformed_client_messages_are_refused_with_the_reason(wire, complaint):
    with pytest.raises(ProtocolError, match=complaint):
        parse_client_message(wire)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"nonce": b"short"}, "bad 'nonce'"),
        ({"args": ["ok", 3]}, "bad 'args'"),
        ({"env": {"XCAT_X": 1}}, "bad 'env'"),
        ({"ts": "yesterday"}, "bad 'ts'"),
    ],
)
def test_malformed_request_bodies_are_refused(changes, complaint):
    import msgpack

    fields = body()._asdict()
    fields.update(changes)
    with pytest.raises(ProtocolError, match=complaint):
        RequestBody.decode(msgpack.packb(fields))


def test_an_output_kind_outside_the_four_is_refused():
    with pytest.raises(ProtocolError, match="one of data, info, warning, error"):
        parse_server_message({"t": "out", "id": 1, "kind": "debug"})
