"""The TFTP protocol without sockets: packets byte by byte, option negotiation,
and read transfers driven one datagram and one clock tick at a time."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from xcatd.boot.tftp_protocol import (
    MAX_RETRIES,
    MAX_WINDOW_BYTES,
    READ_AHEAD,
    Ack,
    ErrorCode,
    ErrorPacket,
    MalformedPacket,
    Opcode,
    ReadTransfer,
    Request,
    State,
    TftpRefused,
    negotiate,
    parse_packet,
    requested_path,
)


def ack(block: int) -> bytes:
    return b"\x00\x04" + block.to_bytes(2, "big")


def data(block: int, payload: bytes) -> bytes:
    return b"\x00\x03" + block.to_bytes(2, "big") + payload


def started(options: dict[str, str], content: bytes) -> ReadTransfer:
    """A transfer of `content` past its OACK, if any: the first window is out."""
    transfer = ReadTransfer(options, len(content), now=0.0)
    if transfer.options:
        transfer.datagrams_to_send()
        transfer.receive(ack(0), now=0.0)
    feed(transfer, content, now=0.0)
    return transfer


def feed(transfer: ReadTransfer, content: bytes, now: float) -> None:
    """Give the transfer the part of `content` it asks for, as a file read would."""
    wanted = transfer.wanted()
    assert wanted is not None
    offset, length = wanted
    transfer.feed(content[offset : offset + length], now)


# Packets


def test_a_read_request_with_options_is_parsed():
    packet = parse_packet(
        b"\x00\x01/xcat/xnba/nodes/n1\x00OCTET\x00BlkSize\x001468\x00tsize\x000\x00"
    )
    assert packet == Request(
        Opcode.RRQ, "/xcat/xnba/nodes/n1", "octet", {"blksize": "1468", "tsize": "0"}
    )


def test_a_request_padded_with_nul_bytes_is_still_read():
    packet = parse_packet(b"\x00\x01pxelinux.0\x00octet\x00\x00")
    assert packet == Request(Opcode.RRQ, "pxelinux.0", "octet", {})


def test_acks_and_errors_are_parsed():
    assert parse_packet(b"\x00\x04\xff\xfe") == Ack(65534)
    assert parse_packet(b"\x00\x05\x00\x08bad option\x00") == ErrorPacket(8, "bad option")
    assert parse_packet(b"\x00\x05\x00\x00") == ErrorPacket(0, "")


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"", "too short"),
        (b"\x00\x01", "too short"),
        (b"\x00\x01file\x00octet", "end with a NUL"),
        (b"\x00\x01file\x00", "without a transfer mode"),
        (b"\x00\x01\x00octet\x00", "without a file name"),
        (b"\x00\x01\xff\xfe\x00octet\x00", "not UTF-8"),
        (data(1, b"hello"), "opcode 3"),
        (b"\x00\x06blksize\x00512\x00", "opcode 6"),
        (b"\x12\x34\x00\x00", "opcode 4660"),
    ],
)
def test_malformed_datagrams_are_refused_with_a_reason(datagram, reason):
    with pytest.raises(MalformedPacket, match=reason):
        parse_packet(datagram)


# Which file a request may have


def rrq(filename: str, mode: str = "octet") -> Request:
    return Request(Opcode.RRQ, filename, mode, {})


def test_a_leading_slash_names_the_same_file_under_the_root():
    assert requested_path(rrq("/pxelinux.0")) == PurePosixPath("pxelinux.0")
    assert requested_path(rrq("pxelinux.0")) == PurePosixPath("pxelinux.0")
    assert requested_path(rrq("//xcat//xnba/./n1")) == PurePosixPath("xcat/xnba/n1")


@pytest.mark.parametrize("filename", ["../etc/passwd", "/../etc/passwd", "xcat/../../etc", ".."])
def test_dot_dot_is_an_access_violation(filename):
    with pytest.raises(TftpRefused, match=r"'\.\.' is not allowed") as refused:
        requested_path(rrq(filename))
    assert refused.value.code == ErrorCode.ACCESS_VIOLATION


def test_writes_are_refused_as_access_violations():
    with pytest.raises(TftpRefused, match="read-only") as refused:
        requested_path(Request(Opcode.WRQ, "kernel", "octet", {}))
    assert refused.value.datagram == b"\x00\x05\x00\x02this TFTP server is read-only\x00"


def test_netascii_is_refused_with_a_hint():
    with pytest.raises(TftpRefused) as refused:
        requested_path(rrq("pxelinux.cfg/default", mode="netascii"))
    assert refused.value.code == ErrorCode.ILLEGAL_OPERATION
    assert str(refused.value) == "mode 'netascii' is not served; use octet (binary)"


# Option negotiation


def test_understood_options_are_acknowledged_and_tsize_is_the_real_size():
    requested = {"blksize": "1468", "tsize": "0", "timeout": "3", "windowsize": "16"}
    assert negotiate(requested, 123456) == {
        "blksize": 1468,
        "tsize": 123456,
        "timeout": 3,
        "windowsize": 16,
    }
    assert negotiate({"timeout": "10"}, 0) == {"timeout": 10}


def test_values_above_the_limits_are_lowered():
    assert negotiate({"blksize": "65535"}, 0) == {"blksize": 65464}
    assert negotiate({"blksize": "65464", "windowsize": "65535"}, 0) == {
        "blksize": 65464,
        "windowsize": MAX_WINDOW_BYTES // 65464,
    }
    assert negotiate({"windowsize": "99999"}, 0) == {"windowsize": MAX_WINDOW_BYTES // 512}


@pytest.mark.parametrize(
    "requested",
    [
        {"blksize": "7"},
        {"windowsize": "0"},
        {"timeout": "0"},
        {"timeout": "11"},  # a client may not hold a silent transfer for long
        {"timeout": "255"},
        {"blksize": "large"},
        {"blksize": "-1"},
        {"blksize": "9" * 5000},
        {"multicast": ""},
    ],
)
def test_unusable_or_unknown_options_are_left_out(requested):
    assert negotiate(requested, 100) == {}


# Read transfers


def test_without_options_data_1_answers_the_request():
    content = bytes(range(256)) * 4 + b"tail"  # 1028 bytes: blocks of 512, 512 and 4
    transfer = ReadTransfer({}, len(content), now=0.0)
    assert transfer.datagrams_to_send() == []
    assert transfer.wanted() == (0, READ_AHEAD)
    transfer.feed(content, now=0.0)  # shorter than asked: the whole file
    assert transfer.datagrams_to_send() == [data(1, content[:512])]
    transfer.receive(ack(1), now=0.1)
    assert transfer.wanted() is None  # block 2 was read ahead
    assert transfer.datagrams_to_send() == [data(2, content[512:1024])]
    transfer.receive(ack(2), now=0.2)
    assert transfer.datagrams_to_send() == [data(3, b"tail")]
    assert transfer.state is State.SENDING
    transfer.receive(ack(3), now=0.3)
    assert transfer.state is State.DONE
    assert transfer.finished and transfer.datagrams_to_send() == []


def test_the_file_is_read_a_large_piece_at_a_time():
    content = bytes(READ_AHEAD + 100)
    transfer = started({}, content)
    for block in range(1, READ_AHEAD // 512 + 1):
        assert transfer.wanted() is None
        assert len(transfer.datagrams_to_send()) == 1
        transfer.receive(ack(block), now=0.0)
    assert transfer.wanted() == (READ_AHEAD, READ_AHEAD)
    feed(transfer, content, now=0.0)
    assert transfer.datagrams_to_send() == [data(READ_AHEAD // 512 + 1, bytes(100))]


def test_options_are_answered_by_an_oack_and_data_waits_for_ack_0():
    transfer = ReadTransfer({"blksize": "1024", "tsize": "0", "rollover": "1"}, 3000, now=0.0)
    assert transfer.datagrams_to_send() == [b"\x00\x06blksize\x001024\x00tsize\x003000\x00"]
    assert transfer.wanted() is None
    transfer.receive(ack(1), now=0.1)  # not the OACK's acknowledgement
    assert transfer.wanted() is None
    transfer.receive(ack(0), now=0.1)
    assert transfer.wanted() == (0, READ_AHEAD)


def test_a_file_that_fills_its_last_block_ends_with_an_empty_one():
    transfer = started({}, b"x" * 512)
    assert transfer.datagrams_to_send() == [data(1, b"x" * 512)]
    transfer.receive(ack(1), now=0.1)
    assert transfer.datagrams_to_send() == [data(2, b"")]
    transfer.receive(ack(2), now=0.2)
    assert transfer.state is State.DONE


def test_an_empty_file_is_one_empty_block():
    transfer = started({}, b"")
    assert transfer.datagrams_to_send() == [data(1, b"")]
    transfer.receive(ack(1), now=0.1)
    assert transfer.state is State.DONE


def test_duplicate_acks_do_not_retransmit():
    content = b"a" * 512 + b"b" * 512 + b"c"
    transfer = started({}, content)
    transfer.datagrams_to_send()
    transfer.receive(ack(1), now=0.1)
    assert transfer.datagrams_to_send() == [data(2, b"b" * 512)]
    for _ in range(3):  # the sorcerer's apprentice would answer each with DATA 2
        transfer.receive(ack(1), now=0.2)
        assert transfer.datagrams_to_send() == []
    transfer.receive(ack(2), now=0.3)
    assert transfer.datagrams_to_send() == [data(3, b"c")]


def test_acks_for_blocks_not_sent_are_ignored():
    transfer = started({}, b"z" * 2000)
    transfer.datagrams_to_send()
    transfer.receive(ack(2), now=0.1)
    transfer.receive(ack(40000), now=0.1)
    assert transfer.wanted() is None and transfer.datagrams_to_send() == []


def test_noise_and_stray_requests_on_the_transfer_port_change_nothing():
    transfer = started({}, b"z" * 2000)
    transfer.datagrams_to_send()
    for noise in (b"", b"\x00", b"\x00\x03\x00\x01xx", b"\x00\x01f\x00octet\x00"):
        transfer.receive(noise, now=0.1)
    assert transfer.state is State.SENDING
    assert transfer.datagrams_to_send() == []


def test_only_a_timeout_retransmits_and_a_silent_client_is_given_up():
    transfer = started({"timeout": "2"}, b"boot")
    assert transfer.datagrams_to_send() == [data(1, b"boot")]
    assert transfer.deadline == 2.0
    transfer.tick(now=1.9)
    assert transfer.datagrams_to_send() == []
    for attempt in range(1, MAX_RETRIES + 1):
        transfer.tick(now=2.0 * attempt)
        assert transfer.datagrams_to_send() == [data(1, b"boot")]
        assert transfer.deadline == 2.0 * (attempt + 1)
    transfer.tick(now=2.0 * (MAX_RETRIES + 1))
    assert transfer.state is State.TIMED_OUT
    assert transfer.datagrams_to_send() == []


def test_an_unacknowledged_oack_is_retransmitted():
    transfer = ReadTransfer({"tsize": "0"}, 7, now=0.0)
    oack = transfer.datagrams_to_send()
    transfer.tick(now=1.0)
    assert transfer.datagrams_to_send() == oack == [b"\x00\x06tsize\x007\x00"]


def test_progress_gives_the_client_its_retries_back():
    content = b"q" * 1500
    transfer = started({}, content)
    for _ in range(MAX_RETRIES):
        transfer.tick(now=transfer.deadline)
    transfer.receive(ack(1), now=10.0)
    for _ in range(MAX_RETRIES):
        transfer.tick(now=transfer.deadline)
    assert transfer.state is State.SENDING


def test_a_client_error_aborts_the_transfer():
    transfer = ReadTransfer({"blksize": "9000"}, 10, now=0.0)
    assert transfer.datagrams_to_send() == [b"\x00\x06blksize\x009000\x00"]
    transfer.receive(b"\x00\x05\x00\x08blksize too large\x00", now=0.1)
    assert transfer.state is State.ABORTED
    assert transfer.client_error == ErrorPacket(ErrorCode.OPTION_REFUSED, "blksize too large")
    transfer.tick(now=5.0)
    assert transfer.datagrams_to_send() == []


def test_a_window_goes_out_whole_and_restarts_after_the_last_block_received():
    content = bytes(range(40))  # blksize 8: five full blocks, then an empty one
    transfer = started({"blksize": "8", "windowsize": "4"}, content)
    assert transfer.datagrams_to_send() == [
        data(n, content[8 * n - 8 : 8 * n]) for n in (1, 2, 3, 4)
    ]
    transfer.receive(ack(2), now=0.1)  # the client lost block 3
    assert transfer.datagrams_to_send() == [
        data(3, content[16:24]),
        data(4, content[24:32]),
        data(5, content[32:40]),
        data(6, b""),
    ]
    transfer.receive(ack(5), now=0.3)
    assert transfer.datagrams_to_send() == [data(6, b"")]
    transfer.receive(ack(6), now=0.4)
    assert transfer.state is State.DONE


def test_a_repeated_ack_restarts_the_window_at_once_but_only_once():
    content = bytes(range(64))  # blksize 8: blocks 1 to 8, then an empty one
    transfer = started({"blksize": "8", "windowsize": "4"}, content)
    transfer.datagrams_to_send()
    transfer.receive(ack(4), now=0.1)
    window = [data(n, content[8 * n - 8 : 8 * n]) for n in (5, 6, 7, 8)]
    assert transfer.datagrams_to_send() == window
    # Block 5 was lost: the client, having nothing new, acknowledges block 4 again.
    transfer.receive(ack(4), now=0.2)
    assert transfer.datagrams_to_send() == window
    for _ in range(3):  # more copies of that ACK: the window is not resent again
        transfer.receive(ack(4), now=0.3)
        assert transfer.datagrams_to_send() == []
    transfer.receive(ack(8), now=0.4)
    assert transfer.datagrams_to_send() == [data(9, b"")]


def test_the_first_window_restarts_on_a_repeated_ack_0():
    content = bytes(40)
    transfer = started({"blksize": "8", "windowsize": "8"}, content)
    window = transfer.datagrams_to_send()
    transfer.receive(ack(0), now=0.1)
    assert transfer.datagrams_to_send() == window


def test_a_transfer_without_progress_ends_within_its_bound_whatever_the_client_does():
    transfer = started({"timeout": "255", "windowsize": "4"}, bytes(5000))
    now = 0.0
    while not transfer.finished:  # the client repeats ACK 0 each time it hears the window
        now = transfer.deadline
        transfer.receive(ack(0), now)
        transfer.tick(now)
    assert transfer.state is State.TIMED_OUT
    assert now <= (MAX_RETRIES + 2) * 10  # 10 s: the longest timeout a client may have


def test_a_timeout_resends_the_whole_window():
    content = bytes(100)
    transfer = started({"blksize": "40", "windowsize": "8"}, content)
    first = transfer.datagrams_to_send()
    assert len(first) == 3  # 40 + 40 + 20 bytes
    transfer.tick(now=transfer.deadline)
    assert transfer.datagrams_to_send() == first


def test_block_numbers_roll_over_to_zero_after_65535():
    blocks = 65536 + 2
    content = bytes(8 * blocks - 3)  # blksize 8: the last block is short
    window = MAX_WINDOW_BYTES // 8
    transfer = started({"blksize": "8", "windowsize": "65535"}, content)
    assert transfer.windowsize == window
    sent = transfer.datagrams_to_send()
    transfer.receive(ack(window), now=0.1)
    feed(transfer, content, now=0.1)
    sent += transfer.datagrams_to_send()
    assert len(sent) == 65536
    assert sent[65534][:4] == b"\x00\x03\xff\xff"
    assert sent[65535][:4] == b"\x00\x03\x00\x00"  # block 65536
    transfer.receive(ack(0), now=0.2)  # acknowledges block 65536, not the OACK
    feed(transfer, content, now=0.2)
    assert transfer.datagrams_to_send() == [data(1, bytes(8)), data(2, bytes(5))]
    transfer.receive(ack(2), now=0.3)
    assert transfer.state is State.DONE
