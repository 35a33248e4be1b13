"""A DHCP client for tests: one DISCOVER as a given kind of firmware, the OFFER's fields.

    python -m tests.boot.dhcp_client --interface IF --mac MAC [--ipxe] [--arch N]

sends a DHCPDISCOVER out of IF (which needs no address) as the firmware
with that MAC would: with `--ipxe` as iPXE does (option 175 and user class
"iPXE"), with `--arch` the client architecture of option 93 (0 BIOS, 7 and
9 x86-64 UEFI, 11 ARM64 UEFI).  It prints what the OFFER tells that
firmware as one JSON object: the address, the next server (siaddr), the
host name (option 12) and the boot file (the BOOTP file field, else option
67); null when no offer came.  Run it inside the network
namespace of the interface (`ip netns exec`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys

COOKIE = b"\x63\x82\x53\x63"
DISCOVER, OFFER = 1, 2


def discover(mac: str, *, ipxe: bool, arch: int | None, xid: int) -> bytes:
    hardware = bytes.fromhex(mac.replace(":", ""))
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                         bytes(4), bytes(4), bytes(4), bytes(4), hardware, b"", b"")  # fmt: skip
    options = [(53, bytes([DISCOVER])), (55, bytes([1, 3, 6, 12, 66, 67, 209]))]
    if arch is not None:
        options.append((93, struct.pack("!H", arch)))
    if ipxe:
        options += [(77, b"iPXE"), (175, bytes([177, 1, 1]))]  # 177 = iPXE's "bus id" option
    body = b"".join(bytes([code, len(value)]) + value for code, value in options)
    return header + COOKIE + body + b"\xff"


def options_of(packet: bytes) -> dict[int, bytes]:
    options, at = {}, 240
    while at < len(packet) and packet[at] != 255:
        if packet[at] == 0:  # padding
            at += 1
            continue
        code, length = packet[at], packet[at + 1]
        options[code] = packet[at + 2 : at + 2 + length]
        at += 2 + length
    return options


def text(value: bytes | None) -> str | None:
    return None if value is None else value.rstrip(b"\0").decode()


def parse(packet: bytes) -> dict:
    options = options_of(packet)
    file = packet[108:236].split(b"\0")[0]
    return {
        "type": options.get(53, b"\0")[0],
        "address": socket.inet_ntoa(packet[16:20]),
        "next_server": socket.inet_ntoa(packet[20:24]),
        "hostname": text(options.get(12)),
        "bootfile": text(file or options.get(67)),
    }


def offer(interface: str, mac: str, *, ipxe: bool, arch: int | None, timeout: float) -> dict:
    xid = int.from_bytes(os.urandom(4), "big")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", 68))
        sock.settimeout(timeout)
        sock.sendto(discover(mac, ipxe=ipxe, arch=arch, xid=xid), ("255.255.255.255", 67))
        while True:
            packet = sock.recv(4096)
            if packet[4:8] == xid.to_bytes(4, "big") and packet[0] == 2:
                reply = parse(packet)
                if reply.pop("type") == OFFER:
                    return reply


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interface", required=True)
    parser.add_argument("--mac", required=True)
    parser.add_argument("--ipxe", action="store_true")
    parser.add_argument("--arch", type=int)
    parser.add_argument("--timeout", type=float, default=5.0)
    options = parser.parse_args()
    try:
        reply = offer(options.interface, options.mac, ipxe=options.ipxe, arch=options.arch,
                      timeout=options.timeout)  # fmt: skip
    except TimeoutError:
        print(json.dumps(None))
        return 1
    print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
