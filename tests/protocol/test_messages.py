"""Every message has one shape; anything else is refused with a reason."""

import os

import msgpack
import pytest
from xcat_protocol import PROTOCOL_VERSION
from xcat_protocol.errors import ProtocolError, VersionMismatch
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
        Hello("mn1", "0.1.0", stamp=-6148914691236517206),  # to a service node
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
    fields = body()._asdict()
    fields.update(changes)
    with pytest.raises(ProtocolError, match=complaint):
        RequestBody.decode(msgpack.packb(fields))


def test_an_output_kind_outside_the_four_is_refused():
    with pytest.raises(ProtocolError, match="one of data, info, warning, error"):
        parse_server_message({"t": "out", "id": 1, "kind": "debug"})


def test_the_protocol_version_is_sent_in_the_hello_and_in_every_request():
    assert Hello("mn1", "0.1.0").to_wire()["protocol"] == PROTOCOL_VERSION
    assert msgpack.unpackb(body().encode())["protocol"] == PROTOCOL_VERSION


def test_a_peer_from_before_the_version_was_sent_speaks_protocol_1():
    fields = body()._asdict()
    del fields["protocol"]
    assert RequestBody.decode(msgpack.packb(fields)) == body(nonce=fields["nonce"])
    assert parse_server_message({"t": "hello", "server": "mn1", "version": "0.1.0"}) == Hello(
        "mn1", "0.1.0"
    )


@pytest.mark.parametrize("theirs", [PROTOCOL_VERSION + 1, PROTOCOL_VERSION - 1])
def test_another_version_is_told_apart_before_anything_else_is_read(theirs):
    # Whatever else a peer of another version sends (other fields, or none),
    # what it is told is its version, not what it left out.
    with pytest.raises(VersionMismatch) as request:
        RequestBody.decode(msgpack.packb({"protocol": theirs, "command": "lsdef"}))
    with pytest.raises(VersionMismatch) as hello:
        parse_server_message({"t": "hello", "protocol": theirs, "version": "9.0"})
    for mismatch in (request.value, hello.value):
        assert mismatch.theirs == theirs
        assert mismatch.peer_is_newer == (theirs > PROTOCOL_VERSION)
    assert (request.value.release, hello.value.release) == (None, "9.0")


def test_a_version_that_is_not_a_number_is_malformed():
    with pytest.raises(ProtocolError, match="bad 'protocol'"):
        parse_server_message({"t": "hello", "protocol": "2", "server": "mn1", "version": "1"})
