"""Booting nodes report their state; nodels and lsdef show it (nodestat,
which probes the nodes too, in tests/test_nodestat.py).

Loopback has every 127.x.y.z address, so a test can speak as several nodes:
curl's --interface and a socket bound before connecting choose the source.
"""

from __future__ import annotations

import re
import socket
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.cluster import Cluster


@pytest.fixture(scope="module")
def booting(shared_cluster: Cluster) -> Cluster:
    """Two nodes at 127.0.0.2 and 127.0.0.3, and one addressed through its group."""
    for args in (
        ("n1", "groups=compute", "ip=127.0.0.2"),
        ("n2", "groups=compute", "ip=127.0.0.3"),
        ("-t", "group", "-o", "rack7", "ip=|r7n(\\d+)|127.0.7.($1+0)|"),
        ("r7n5", "groups=rack7"),
    ):
        assert shared_cluster.run("mkdef", *args).returncode == 0
    return shared_cluster


def report(cluster: Cluster, source: str, **fields: str) -> tuple[int, str]:
    """POST fields to the status endpoint as the real curl does, from `source`."""
    form = [
        part for name, value in fields.items() for part in ("--data-urlencode", f"{name}={value}")
    ]
    result = subprocess.run(
        ["curl", "-sS", "--interface", source, "-w", "\n%{http_code}", *form,
         f"http://127.0.0.1:{cluster.http_port}/xcatd/status"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    body, _, code = result.stdout.rpartition("\n")
    return int(code), body.rstrip("\n")


def status_line(cluster: Cluster, source: str, line: bytes) -> bytes:
    """One line to port 3002 the way xCAT's node scripts send it, and the answer."""
    with socket.socket() as sock:
        sock.bind((source, 0))
        sock.settimeout(10)
        sock.connect(("127.0.0.1", cluster.status_port))
        sock.sendall(line)
        return sock.makefile("rb").readline()


def test_a_node_reports_and_nodels_and_lsdef_show_it(booting):
    assert report(booting, "127.0.0.2", node="n1", state="netbooting") == (200, "n1: netbooting")
    assert report(booting, "127.0.0.2", node="n1", state="booted") == (200, "n1: booted")

    assert booting.ok("nodels", "n1", "nodelist.status") == "n1: booted\n"
    shown = booting.run("lsdef", "-t", "node", "-o", "n1", "-i", "status,statustime").stdout
    assert "    status=booted\n" in shown
    assert re.search(r"statustime=\d\d-\d\d-\d{4} \d\d:\d\d:\d\d\n", shown)


def test_a_node_is_found_by_its_address_even_an_inherited_one(booting):
    assert report(booting, "127.0.7.5", state="booted") == (200, "r7n5: booted")
    assert booting.ok("nodels", "r7n5", "nodelist.status") == "r7n5: booted\n"


def test_a_report_from_another_address_is_refused_and_logged(booting):
    code, text = report(booting, "127.0.0.3", node="n1", state="failed")
    assert (code, text) == (403, "127.0.0.3 is not the address of node 'n1'")
    assert report(booting, "127.0.0.9", state="booted")[0] == 403
    assert "status report refused: 127.0.0.3 is not the address of node 'n1'" in booting.logs()
    assert booting.ok("nodels", "n1", "nodelist.status") != "n1: failed\n"


def test_an_unknown_state_is_refused(booting):
    code, text = report(booting, "127.0.0.3", node="n2", state="exploded")
    assert code == 400
    assert text.startswith("unknown state 'exploded': use one of alive, bmcready, booted")


def test_xcats_installstatus_line_on_port_3002(booting):
    assert status_line(booting, "127.0.0.3", b"installstatus installing\n") == b"ok\n"
    assert booting.ok("nodels", "n2", "nodelist.status") == "n2: installing\n"
    assert status_line(booting, "127.0.0.4", b"installstatus booted\n") == (
        b"error: 127.0.0.4 is not the address of any node\n"
    )
    assert status_line(booting, "127.0.0.3", b"hello\n") == (
        b"error: expected 'installstatus <state>'\n"
    )


def test_a_node_that_never_reported_has_no_status(booting):
    assert booting.run("mkdef", "n9", "groups=compute").returncode == 0
    listed = booting.ok("nodels", "n9,n2", "nodelist.status", "nodelist.statustime")
    assert re.fullmatch(
        r"n2: nodelist.status: \w+\nn2: nodelist.statustime: \d\d-\d\d-\d{4} \d\d:\d\d:\d\d\n"
        r"n9: nodelist.status: \nn9: nodelist.statustime: \n",
        listed,
    ), listed


def test_a_node_that_resets_its_connection_does_not_stop_the_listener(booting):
    for _ in range(20):  # reset at once: the daemon may see it before getpeername
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.connect(("127.0.0.1", booting.status_port))
    assert status_line(booting, "127.0.0.3", b"installstatus booted\n") == b"ok\n"
    assert booting.process.poll() is None


def test_a_regex_address_that_fails_for_one_node_refuses_only_that_node(booting):
    booting.ok("mkdef", "-t", "group", "-o", "badrack", "ip=|bad(\\d+)|127.0.9.(6/($1-7))|")
    booting.ok("mkdef", "bad7", "groups=badrack")
    try:
        assert report(booting, "127.0.0.2", node="n1", state="booted") == (200, "n1: booted")
        assert report(booting, "127.0.9.1", node="bad7", state="booted")[0] == 403
    finally:
        booting.ok("rmdef", "-t", "node", "-o", "bad7")
        booting.ok("rmdef", "-t", "group", "-o", "badrack")


def test_a_hundred_nodes_reporting_at_once_are_each_recorded(booting):
    # Reports that arrive together are written together (one transaction):
    # each must still be answered only once stored, and each node end with
    # its own last word.
    assert booting.run("mkdef", "-t", "group", "-o", "rack8",
                       "ip=|r8n(\\d+)|127.0.8.($1+0)|").returncode == 0  # fmt: skip
    assert booting.run("mkdef", "r8n[1-100]", "groups=rack8").returncode == 0
    url = f"http://127.0.0.1:{booting.http_port}/xcatd/status"

    def node(n: int) -> subprocess.Popen:
        last = "failed" if n % 10 else "booted"
        script = (f"curl -sSf --interface 127.0.8.{n} -d state=netbooting {url} && "
                  f"curl -sSf --interface 127.0.8.{n} -d state={last} {url}")  # fmt: skip
        return subprocess.Popen(script, shell=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    nodes = [node(n) for n in range(1, 101)]
    answers = [node.communicate(timeout=60) for node in nodes]
    assert [node.returncode for node in nodes] == [0] * 100, answers[:3]
    assert answers[41][0] == "r8n42: netbooting\nr8n42: failed\n"
    shown = booting.ok("nodels", "rack8", "nodelist.status")
    expected = [f"r8n{n}: {'failed' if n % 10 else 'booted'}" for n in range(1, 101)]
    assert sorted(shown.splitlines()) == sorted(expected)


def test_nodes_booting_at_once_each_leave_their_host_key_once(booting):
    # The keys that arrive while the file is written go in together next;
    # every node must still end with one line, its last key.
    assert booting.run("mkdef", "-t", "group", "-o", "rack6",
                       "ip=|r6n(\\d+)|127.0.6.($1+0)|").returncode == 0  # fmt: skip
    assert booting.run("mkdef", "r6n[1-40]", "groups=rack6").returncode == 0
    url = f"http://127.0.0.1:{booting.http_port}/xcatd/status"
    keys = {n: [host_key_line(), host_key_line()] for n in range(1, 41)}

    def node(n: int) -> subprocess.Popen:
        script = " && ".join(
            f"curl -sSf --interface 127.0.6.{n} -d state=booted --data-urlencode "
            f"'hostkey={key}' {url}"
            for key in keys[n]  # a node that boots twice: its second key replaces the first
        )
        return subprocess.Popen(script, shell=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    nodes = [node(n) for n in range(1, 41)]
    answers = [node.communicate(timeout=60) for node in nodes]
    assert [node.returncode for node in nodes] == [0] * 40, answers[:3]
    known = (booting.root / "etc/ssh/ssh_known_hosts2").read_text().splitlines()
    mine = sorted(line for line in known if line.startswith("r6n"))
    assert mine == sorted(f"r6n{n},127.0.6.{n} {keys[n][1]}" for n in range(1, 41))


def host_key_line() -> str:
    """A new Ed25519 host key's public line, as a node makes at boot."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
