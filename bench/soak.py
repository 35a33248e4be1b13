"""Soak: one daemon under a mixed load for minutes, then its health (issue 11).

The benchmark starts one daemon in a temporary root, defines NODES nodes
(bench.objects' data set) and `statusnode` (ip 127.0.0.1, so that status
reports from here are accepted for it), and serves a 16 MiB file from
installdir over HTTP and a 4 MiB file from tftpdir over TFTP.  Then, for
--minutes (10 by default), all at once and all to 127.0.0.1 only:

- --clients (50) client processes, each using the real client's
  `Connection` in process (no 60 ms process start per request), each
  pausing 0.1-0.9 s between actions drawn at random: reads (`lsxcatd -v`,
  `lsdef <node>`, `nodels <rack>`), writes (`chdef <node>
  usercomment=<unique token>` on nodes no other process writes, every
  acknowledged value recorded), cancels (a request then its `cancel` frame,
  waiting for its `done`), Ctrl-C (a request, its cancel, and the
  connection closed at once, as the client does on Ctrl-C) and resets (a
  TCP reset, SO_LINGER 0, right after connecting, in the middle of the
  ClientHello, in the middle of the handshake, after the daemon's hello, in
  the middle of a frame, or right after a request);
- HTTP_DOWNLOADS curl downloads and TFTP_DOWNLOADS atftp downloads, evenly
  spread, each checked byte for byte (size and SHA-256);
- a status flood: STATUS_RATE reports a second, in turn `POST /xcatd/status`
  for statusnode (accepted) and for another node (refused: not from its
  address), and `installstatus` lines to the status port, one with a state
  that does not exist (answered with an error);
- a probe process sending `lsxcatd -v` every PROBE_EVERY on one kept
  connection, recording each latency.

The load stops early if the daemon exits.  Then, once the clients are gone
and the daemon has had up to SETTLE seconds: its open files are counted, and
every acknowledged write is read back with `lsdef` (from a restarted daemon
on the same root when it died).  Printed, beside their targets: requests
served and what was done, errors by kind, per minute the probe's p50 and
p99 (target p99 < 100 ms), the daemon's peak VmRSS (target: no growth after
the first minute), open files and CPU, and the whole machine's CPU (the
clients share its cores: a busy machine explains slow probes); the probes
that took longest, with when; open files before and after (target: equal),
connections the daemon still counts, daemon exits (target 0), lost writes
(target 0), and what the daemon logged at ERROR.

The exit status is 1 only when the daemon died or an acknowledged write was
lost (a missed latency or memory target is printed, not fatal); 2 when the
benchmark could not be set up.  Not part of `python -m bench`: it takes
minutes.

    .venv/bin/python -m bench.soak [--minutes 10] [--clients 50]
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import hashlib
import http.client
import itertools
import math
import multiprocessing
import os
import queue
import random
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, NamedTuple

from xcat_client.connection import Connection
from xcat_client.credentials import Credentials, Target
from xcat_client.errors import ClientError
from xcat_protocol.framing import encode_frame
from xcat_protocol.messages import Cancel, Done, Output
from xcat_protocol.tls import client_context

from tests.cluster import Cluster

from .common import percentile, report, running_cluster
from .http import make_file
from .objects import RACKS, cpu_seconds, node_name, status_kib, write_stanzas

MINUTES = 10.0
CLIENTS = 50
NODES = 300
STATUS_NODE = "statusnode"  # defined with ip 127.0.0.1: reports from here are its own
HTTP_MIB, TFTP_MIB = 16, 4
HTTP_DOWNLOADS, TFTP_DOWNLOADS = 200, 50
STATUS_RATE = 10  # status reports a second, HTTP and port-3002 lines in turn
PROBE_EVERY = 0.2  # seconds between the probe's requests
PROBE_P99_MS = 100.0
SLOWEST = 5  # probes printed with when they were sent, to match them with other events
THINK = (0.1, 0.9)  # seconds a client process pauses between actions
RECONNECT = 0.2  # chance that a client process starts a new connection after an action
CANCEL_AFTER = 0.005  # at most this many seconds between a request and its cancel
RSS_TOLERANCE = 0.05  # growth after the first minute that still counts as none
TIMEOUT = 15.0  # seconds any one reply, download or report may take
SETTLE = 15.0  # seconds the daemon gets to close what the stopped clients left
CANCELLED_RC = 130
JSON_NODES = ["-t", "node", "-i", "usercomment", "--json"]


class BenchmarkFailure(Exception):
    """The soak could not be set up: its figures would mean nothing."""


# -- what the load did -----------------------------------------------------------------


@dataclass
class Tally:
    """One load's counts: requests answered, what was done, what failed (with the
    first message of each kind, to say what it looked like)."""

    served: int = 0
    done: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)

    def fail(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.samples.setdefault(kind, detail.strip().replace("\n", " ")[:120])

    def merge(self, other: Tally) -> None:
        self.served += other.served
        self.done.update(other.done)
        self.errors.update(other.errors)
        for kind, detail in other.samples.items():
            self.samples.setdefault(kind, detail)


@dataclass
class WriteLog:
    """Per node, the last value the daemon acknowledged, and the values sent
    after it that were never acknowledged (they may or may not have landed)."""

    acked: dict[str, str] = field(default_factory=dict)
    unacked: dict[str, list[str]] = field(default_factory=dict)

    def sent(self, node: str, value: str) -> None:
        self.unacked.setdefault(node, []).append(value)

    def ack(self, node: str, value: str) -> None:
        self.acked[node] = value
        self.unacked.pop(node, None)

    def merge(self, other: WriteLog) -> None:
        """Another process's log; each process writes its own nodes, so none overlap."""
        self.acked.update(other.acked)
        self.unacked.update(other.unacked)


@dataclass
class Share:
    """What one load process hands back: its tally, its writes, its latencies
    as (seconds since the load began, seconds the request took)."""

    tally: Tally
    writes: WriteLog = field(default_factory=WriteLog)
    latencies: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What every load needs: the daemon's environment and ports, the nodes,
    the clock (time.monotonic is one clock for every process on Linux)."""

    env: dict[str, str]
    nodes: list[str]
    begin: float
    end: float


@dataclass(frozen=True)
class Served:
    """A file the daemon serves, and what a download of it must be."""

    path: Path
    size: int
    sha256: str

    @classmethod
    def make(cls, path: Path, mib: int) -> Served:
        path.parent.mkdir(parents=True, exist_ok=True)
        make_file(path, mib)
        data = path.read_bytes()
        return cls(path.resolve(), len(data), hashlib.sha256(data).hexdigest())

    def check(self, data: bytes) -> str | None:
        """Why `data` is not this file, or None when it is."""
        if len(data) != self.size:
            return f"{len(data)} of {self.size} bytes"
        if hashlib.sha256(data).hexdigest() != self.sha256:
            return "the bytes differ"
        return None


# -- requests in process ---------------------------------------------------------------


def request_fields() -> dict[str, Any]:
    """The request fields every command sends besides its name and arguments."""
    return {"user": getpass.getuser(), "cwd": "/", "env": {}}


def open_connection(env: dict[str, str]) -> Connection:
    """The real client's connection (TLS, the daemon's hello read), with replies bounded."""
    connection = Connection(Target.from_environment(env), Credentials.from_environment(env))
    connection.sock.settimeout(TIMEOUT)
    return connection


def follow(connection: Connection, request_id: int) -> tuple[int, list[Output]]:
    """The request's exit code and output, read up to its `done`."""
    outputs = []
    while True:
        message = connection.receive()
        if isinstance(message, Output) and message.id == request_id:
            outputs.append(message)
        elif isinstance(message, Done) and message.id == request_id:
            return message.rc, outputs


def call(connection: Connection, cmd: str, args: list[str]) -> tuple[int, list[Output]]:
    """One command, as the client runs it: its exit code and output."""
    return follow(connection, connection.request(cmd, args, **request_fields()))


def text_of(outputs: list[Output]) -> str:
    return " ".join(output.text or "" for output in outputs)


ERROR_KINDS = (
    ("timed out", "timeout"),
    ("cannot reach", "cannot connect"),
    ("closed the connection", "closed by the daemon"),
    ("lost", "connection lost"),
    ("refused our certificate", "certificate refused"),
    ("TLS", "TLS failed"),
)


def error_kind(exc: BaseException) -> str:
    """A short name for what went wrong, so that failures can be counted by kind."""
    text = str(exc)
    for needle, kind in ERROR_KINDS:
        if needle in text:
            return kind
    return type(exc).__name__


def abort(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends a TCP reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def client_hello(context: ssl.SSLContext, host: str) -> bytes:
    """The first flight of a real TLS handshake with these credentials, made in memory."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


# -- a client process ------------------------------------------------------------------


class Client:
    """One client process's actions, on a connection it keeps between them."""

    def __init__(self, index: int, plan: Plan, mine: list[str]) -> None:
        self.index, self.plan, self.mine = index, plan, mine
        self.rng = random.Random(index)
        self.share = Share(Tally())
        self.target = Target.from_environment(plan.env)
        credentials = Credentials.from_environment(plan.env)
        self.context = client_context(credentials.ca_file, credentials.cred_file)
        self.connection: Connection | None = None
        self.writes = 0
        self.actions: list[tuple[Callable[[], None], int]] = [
            (self.read, 8),
            (self.write, 4 if mine else 0),
            (self.cancel, 2),
            (self.ctrl_c, 1),
            (self.reset, 2),
        ]
        self.resets: list[tuple[str, Callable[[], None]]] = [
            ("after connect", self.reset_after_connect),
            ("mid-ClientHello", self.reset_mid_client_hello),
            ("mid-handshake", self.reset_mid_handshake),
            ("after hello", self.reset_after_hello),
            ("mid-frame", self.reset_mid_frame),
            ("after request", self.reset_after_request),
        ]

    def run(self, stop: Event) -> None:
        """Act until the plan's end or until told to stop, pausing between actions."""
        stop.wait(max(0.0, self.plan.begin - time.monotonic()) + self.rng.uniform(*THINK))
        actions, weights = zip(*self.actions, strict=True)
        while not stop.is_set() and time.monotonic() < self.plan.end:
            action = self.rng.choices(actions, weights)[0]
            try:
                action()
            except (ClientError, OSError) as exc:
                self.share.tally.fail(f"{action.__name__}: {error_kind(exc)}", str(exc))
                self.hang_up()
            if self.rng.random() < RECONNECT:
                self.hang_up()
            stop.wait(self.rng.uniform(*THINK))
        self.hang_up()

    def connect(self) -> Connection:
        if self.connection is None:
            self.connection = open_connection(self.plan.env)
        return self.connection

    def hang_up(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def call(self, cmd: str, args: list[str]) -> tuple[int, list[Output]]:
        rc, outputs = call(self.connect(), cmd, args)
        self.share.tally.served += 1
        return rc, outputs

    def read(self) -> None:
        node = self.rng.choice(self.plan.nodes)
        cmd, args = self.rng.choice(
            [
                ("lsxcatd", ["-v"]),
                ("lsdef", [node]),
                ("nodels", [f"rack{self.rng.randint(1, RACKS):02d}"]),
            ]
        )
        rc, outputs = self.call(cmd, args)
        if rc == 0:
            self.share.tally.done["read"] += 1
        else:
            self.share.tally.fail(f"read: {cmd} rc {rc}", text_of(outputs))

    def write(self) -> None:
        """chdef of a unique token on one of this process's own nodes; recorded when acked."""
        node = self.rng.choice(self.mine)
        self.writes += 1
        value = f"c{self.index}-{self.writes}-{self.rng.getrandbits(32):08x}"
        self.share.writes.sent(node, value)
        rc, outputs = self.call("chdef", [node, f"usercomment={value}"])
        if rc == 0:
            self.share.writes.ack(node, value)
            self.share.tally.done["write (acknowledged)"] += 1
        else:
            self.share.tally.fail(f"write: chdef rc {rc}", text_of(outputs))

    def start_and_cancel(self) -> tuple[Connection, int]:
        """A listing of every node, and its cancel a few milliseconds later."""
        connection = self.connect()
        request_id = connection.request("lsdef", ["-t", "node", "-l"], **request_fields())
        time.sleep(self.rng.uniform(0, CANCEL_AFTER))
        connection.send(Cancel(request_id))
        return connection, request_id

    def cancel(self) -> None:
        """Cancel a request and wait for its `done`: 130, or 0 when it finished first."""
        rc, outputs = follow(*self.start_and_cancel())
        self.share.tally.served += 1
        outcome = {CANCELLED_RC: "cancel: cancelled", 0: "cancel: finished first"}.get(rc)
        if outcome:
            self.share.tally.done[outcome] += 1
        else:
            self.share.tally.fail(f"cancel: rc {rc}", text_of(outputs))

    def ctrl_c(self) -> None:
        """What the client does on Ctrl-C: send the cancel, close the connection."""
        self.start_and_cancel()
        self.hang_up()
        self.share.tally.done["ctrl-c (cancel, close)"] += 1

    def reset(self) -> None:
        phase, reset = self.rng.choice(self.resets)
        try:
            reset()
        except (ClientError, OSError) as exc:  # counted by phase: where it went wrong matters
            self.share.tally.fail(f"reset {phase}: {error_kind(exc)}", str(exc))
        else:
            self.share.tally.done[f"reset {phase}"] += 1

    def raw_socket(self) -> socket.socket:
        return socket.create_connection(tuple(self.target), timeout=TIMEOUT)

    def reset_after_connect(self) -> None:
        abort(self.raw_socket())

    def reset_mid_client_hello(self) -> None:
        hello = client_hello(self.context, self.target.host)
        with self.raw_socket() as sock:
            sock.sendall(hello[: self.rng.randrange(1, len(hello))])
            abort(sock)

    def reset_mid_handshake(self) -> None:
        """The ClientHello sent and the daemon's first answer read: it waits for our certificate."""
        with self.raw_socket() as sock:
            sock.sendall(client_hello(self.context, self.target.host))
            sock.recv(65536)
            abort(sock)

    def reset_after_hello(self) -> None:
        abort(open_connection(self.plan.env).sock)

    def reset_mid_frame(self) -> None:
        """Part of a request frame (maybe of its length prefix), then the reset."""
        frame = encode_frame({"t": "req", "id": 1, "body": os.urandom(4096), "sig": b""})
        with contextlib.closing(open_connection(self.plan.env)) as connection:
            connection.sock.sendall(frame[: self.rng.randrange(1, len(frame))])
            abort(connection.sock)

    def reset_after_request(self) -> None:
        """The reset while the daemon works on a request and writes its answer."""
        with contextlib.closing(open_connection(self.plan.env)) as connection:
            connection.request("lsdef", ["-t", "node", "-l"], **request_fields())
            abort(connection.sock)


def client_process(index: int, clients: int, plan: Plan, stop: Event, results: Any) -> None:
    """A client process's whole life: its share of the load, then its tally and writes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops it, not Ctrl-C
    client = Client(index, plan, plan.nodes[index::clients])
    try:
        client.run(stop)
    except Exception as exc:  # a bug here must not lose what was counted so far
        client.share.tally.fail("client process crashed", repr(exc))
    results.put(client.share)


def probe_process(plan: Plan, stop: Event, results: Any) -> None:
    """`lsxcatd -v` every PROBE_EVERY on one kept connection; each latency, with when."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    share = Share(Tally())
    connection = None
    for _ in paced(plan, stop, int((plan.end - plan.begin) / PROBE_EVERY)):
        try:
            connection = connection or open_connection(plan.env)
            started = time.monotonic()
            rc, outputs = call(connection, "lsxcatd", ["-v"])
            share.latencies.append((started - plan.begin, time.monotonic() - started))
            share.tally.served += 1
            if rc != 0:
                share.tally.fail(f"probe: rc {rc}", text_of(outputs))
        except (ClientError, OSError) as exc:
            share.tally.fail(f"probe: {error_kind(exc)}", str(exc))
            if connection is not None:
                connection.close()
            connection = None
    results.put(share)


# -- downloads and status reports (threads of the benchmark's own process) -------------


def paced(plan: Plan, stop: Event, count: int) -> Iterator[int]:
    """0 .. count-1, each at its turn on an even spread over the load (a late one
    goes at once); nothing more once the load is over or told to stop."""
    step = (plan.end - plan.begin) / max(count, 1)
    for index in range(count):
        if stop.wait(max(0.0, plan.begin + index * step - time.monotonic())):
            return
        if time.monotonic() >= plan.end:
            return
        yield index


def http_downloads(files: Files, plan: Plan, stop: Event, tally: Tally) -> None:
    """HTTP_DOWNLOADS whole downloads with curl, each checked byte for byte."""
    for _ in paced(plan, stop, HTTP_DOWNLOADS):
        problem = http_download(files.http_url, files.http)
        if problem:
            tally.fail(f"HTTP download: {problem.split(':')[0]}", problem)
        else:
            tally.done["HTTP download complete"] += 1


def http_download(url: str, served: Served) -> str | None:
    """Why one curl download of `url` is not the file, or None when it is."""
    try:
        result = subprocess.run(
            ["curl", "-sS", "--max-time", str(TIMEOUT), "-o", "-", url],
            capture_output=True,
            timeout=TIMEOUT + 5,
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    if result.returncode != 0:
        return f"curl exit {result.returncode}: {result.stderr.decode(errors='replace')}"
    problem = served.check(result.stdout)
    return f"wrong body: {problem}" if problem else None


def tftp_downloads(port: int, files: Files, plan: Plan, stop: Event, tally: Tally) -> None:
    """TFTP_DOWNLOADS with atftp, windowsize 16 and 1 (as PXE ROMs fetch) in turn."""
    for index in paced(plan, stop, TFTP_DOWNLOADS):
        problem = tftp_download(port, files, 16 if index % 2 else 1)
        if problem:
            tally.fail(f"TFTP download: {problem.split(':')[0]}", problem)
        else:
            tally.done["TFTP download complete"] += 1


def tftp_download(port: int, files: Files, window: int) -> str | None:
    """Why one atftp download is not the file, or None when it is."""
    local = files.tftp_local
    local.unlink(missing_ok=True)
    command = ["atftp", "--option", "blksize 1468", "--option", f"windowsize {window}",
               "-g", "-r", files.tftp_remote, "-l", str(local), "127.0.0.1", str(port)]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, timeout=TIMEOUT * 4)
    except subprocess.TimeoutExpired:
        return "timeout"
    if result.returncode != 0:
        return f"atftp exit {result.returncode}: {result.stderr.decode(errors='replace')}"
    problem = files.tftp.check(local.read_bytes() if local.exists() else b"")
    return f"wrong file: {problem}" if problem else None


def status_flood(cluster: Cluster, plan: Plan, stop: Event, tally: Tally) -> None:
    """STATUS_RATE reports a second, the four kinds in turn; each answer counted."""
    other = plan.nodes[0]
    reports: list[tuple[str, Callable[[], str]]] = [
        ("HTTP, own address", lambda: post_status(cluster.http_port, STATUS_NODE)),
        ("HTTP, another node", lambda: post_status(cluster.http_port, other)),
        ("line", lambda: status_line(cluster.status_port, "installstatus booted")),
        ("line, unknown state", lambda: status_line(cluster.status_port, "installstatus x")),
    ]
    count = int((plan.end - plan.begin) * STATUS_RATE)
    for index in paced(plan, stop, count):
        kind, send = reports[index % len(reports)]
        try:
            tally.done[f"status {kind}: {send()}"] += 1
        except (OSError, http.client.HTTPException) as exc:
            tally.fail(f"status {kind}: {error_kind(exc)}", str(exc))


def post_status(port: int, node: str) -> str:
    """`POST /xcatd/status` for `node`, as a booting node sends it; the HTTP status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request("POST", "/xcatd/status", f"node={node}&state=booted", headers)
        response = connection.getresponse()
        response.read()
        return str(response.status)
    finally:
        connection.close()


def status_line(port: int, line: str) -> str:
    """One xCAT status line on the status port; the answer's first word."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(line.encode() + b"\n")
        answer = b""
        while b"\n" not in answer and (chunk := sock.recv(1024)):
            answer += chunk
    return (answer.decode(errors="replace").split() or ["(nothing)"])[0].rstrip(":")


# -- the daemon, from outside ----------------------------------------------------------


def open_fds(pid: int) -> int:
    """How many files the process has open; 0 once it is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def host_busy_seconds() -> float:
    """CPU seconds all cores of the machine have spent on anything but idling (/proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(n) for n in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


class Sample(NamedTuple):
    """The daemon and the machine at one moment of the load."""

    seconds: float  # since the load began
    rss_kib: int
    fds: int
    daemon_cpu: float  # CPU seconds the daemon has used so far
    host_busy: float  # CPU seconds the whole machine has used so far

    @classmethod
    def take(cls, pid: int, seconds: float) -> Sample:
        rss, fds = status_kib(pid, "VmRSS"), open_fds(pid)
        return cls(seconds, rss, fds, cpu_seconds(pid), host_busy_seconds())


@dataclass
class Watch:
    """The daemon sampled each second during the load, and how it ended, when it did."""

    samples: list[Sample] = field(default_factory=list)
    died: str | None = None
    seconds: float = 0.0

    def run(self, cluster: Cluster, plan: Plan, stop: Event) -> None:
        """Sample until the load's end, Ctrl-C, or the daemon's exit (which stops the load)."""
        assert cluster.process is not None
        pid = cluster.process.pid
        try:
            stop.wait(max(0.0, plan.begin - time.monotonic()))
            while time.monotonic() < plan.end and not stop.is_set():
                now = time.monotonic() - plan.begin
                if (rc := cluster.process.poll()) is not None:
                    self.died = f"exit status {rc} after {now:.0f} s of load"
                    break
                with contextlib.suppress(OSError):  # the daemon may be gone this instant
                    self.samples.append(Sample.take(pid, now))
                stop.wait(1.0)
        except KeyboardInterrupt:
            print("interrupted: stopping the load", flush=True)
        stop.set()
        self.seconds = max(0.0, min(time.monotonic(), plan.end) - plan.begin)


def settle(pid: int, baseline: int) -> int:
    """The daemon's open files once back at `baseline`, or after SETTLE seconds."""
    deadline = time.monotonic() + SETTLE
    while (count := open_fds(pid)) > baseline and time.monotonic() < deadline:
        time.sleep(0.5)
    return count


# -- setting up ------------------------------------------------------------------------


@dataclass(frozen=True)
class Files:
    """The two served files, and how a client names them."""

    http: Served
    http_url: str
    tftp: Served
    tftp_remote: str  # relative to tftpdir, as a TFTP client asks for it
    tftp_local: Path  # where atftp writes what it received


def prepare(cluster: Cluster, nodes: int) -> Files:
    """The nodes, statusnode, and the two served files."""
    stanzas = cluster.root.parent / "nodes.stanza"
    write_stanzas(stanzas, nodes)
    made = cluster.run("mkdef", "-z", input=stanzas.read_text())
    if made.returncode != 0:
        raise BenchmarkFailure(f"mkdef -z failed: {made.stderr}")
    made = cluster.run("mkdef", "-t", "node", STATUS_NODE, "groups=all", "ip=127.0.0.1")
    if made.returncode != 0:
        raise BenchmarkFailure(f"mkdef {STATUS_NODE} failed: {made.stderr}")
    image = Served.make(cluster.root / "install/soak/rootimg.cpio.gz", HTTP_MIB)
    initrd = Served.make(cluster.root / "tftpboot/soak/initrd.img", TFTP_MIB)
    url = f"http://127.0.0.1:{cluster.http_port}{image.path}"  # xCAT's imgurl: the full path
    local = cluster.root.parent / "tftp-received"
    return Files(image, url, initrd, "soak/initrd.img", local)


def warm_up(cluster: Cluster, files: Files) -> None:
    """One of each kind of work before the baseline is taken, so that what the
    daemon opens once (database files, caches) is in it; a failure here means
    the soak cannot measure anything."""
    connection = open_connection(cluster.env)
    try:
        for cmd, args in (("lsxcatd", ["-v"]), ("chdef", [node_name(1), "usercomment=warm"])):
            rc, outputs = call(connection, cmd, args)
            if rc != 0:
                raise BenchmarkFailure(f"{cmd} failed: {text_of(outputs)}")
    finally:
        connection.close()
    for what, problem in (
        ("HTTP", http_download(files.http_url, files.http)),
        ("TFTP", tftp_download(cluster.tftp_port, files, 16)),
        ("status", None if post_status(cluster.http_port, STATUS_NODE) == "200" else "refused"),
    ):
        if problem:
            raise BenchmarkFailure(f"{what} does not work before the load: {problem}")


# -- the load --------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the load measured."""

    tally: Tally
    writes: WriteLog
    latencies: list[tuple[float, float]]
    watch: Watch


def run_load(cluster: Cluster, plan: Plan, files: Files, clients: int) -> Run:
    """Client processes and the probe (forked before any thread starts), the
    downloads and the status flood, the daemon watched; everything stopped and
    gathered once the load is over or the daemon has died."""
    context = multiprocessing.get_context("fork")
    stop, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=client_process, args=(i, clients, plan, stop, results))
        for i in range(clients)
    ] + [context.Process(target=probe_process, args=(plan, stop, results))]
    for process in processes:
        process.start()
    side = [Tally() for _ in range(3)]
    threads = [
        threading.Thread(target=http_downloads, args=(files, plan, stop, side[0])),
        threading.Thread(
            target=tftp_downloads, args=(cluster.tftp_port, files, plan, stop, side[1])
        ),
        threading.Thread(target=status_flood, args=(cluster, plan, stop, side[2])),
    ]
    for thread in threads:
        thread.start()
    watch = Watch()
    watch.run(cluster, plan, stop)
    shares = gather(processes, results)
    for thread in threads:
        thread.join()
    return merge(shares, side, len(processes), watch)


def gather(processes: list[Any], results: Any) -> list[Share]:
    """Each process's share (read before joining: a full pipe would block its exit);
    a process that does not answer in time is ended."""
    shares: list[Share] = []
    deadline = time.monotonic() + TIMEOUT * 2
    while len(shares) < len(processes) and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):  # look again until the deadline
            shares.append(results.get(timeout=1))
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join()
    return shares


def merge(shares: list[Share], side: list[Tally], expected: int, watch: Watch) -> Run:
    tally, writes, latencies = Tally(), WriteLog(), []
    for share in shares:
        tally.merge(share.tally)
        writes.merge(share.writes)
        latencies += share.latencies
    for other in side:
        tally.merge(other)
    if len(shares) < expected:
        tally.fail("load process gave no result", f"{expected - len(shares)} of {expected}")
    return Run(tally, writes, sorted(latencies), watch)


# -- after the load --------------------------------------------------------------------


@dataclass
class Health:
    """The daemon after the load."""

    fds_before: int
    fds_after: int | None  # None when the daemon died: its files went with it
    connections: int | None  # as lsxcatd -a counts them, our own included
    lost: list[str]  # "node: expected X, found Y"
    superseded: int  # values that were a later, unacknowledged write's
    checked: int
    revived: bool


def check_health(cluster: Cluster, run: Run, fds_before: int) -> Health:
    """Open files after the settle; then every acknowledged write read back, from
    a daemon started again on the same root if this one died."""
    assert cluster.process is not None
    revived = cluster.process.poll() is not None
    fds_after = None if revived else settle(cluster.process.pid, fds_before)
    if revived:
        run.watch.died = run.watch.died or "it exited after the load, before the check"
        cluster.log = cluster.root / "xcatd-revived.log"  # `start` waits for its own line
        cluster.start()
    connection = open_connection(cluster.env)
    try:
        connections = None if revived else count_connections(connection)
        found = read_back(connection)
    finally:
        connection.close()
    lost, superseded = compare(run.writes, found)
    return Health(
        fds_before, fds_after, connections, lost, superseded, len(run.writes.acked), revived
    )


def count_connections(connection: Connection) -> int | None:
    """The connections the daemon counts (`lsxcatd -a`)."""
    _, outputs = call(connection, "lsxcatd", ["-a", "--json"])
    for output in outputs:
        if isinstance(output.data, dict) and "connections" in output.data:
            return int(output.data["connections"])
    return None


def read_back(connection: Connection) -> dict[str, str]:
    """Every node's usercomment, as lsdef shows it."""
    rc, outputs = call(connection, "lsdef", JSON_NODES)
    if rc != 0:
        raise BenchmarkFailure(f"lsdef failed after the load: {text_of(outputs)}")
    return {
        output.data["name"]: output.data.get("usercomment", "")
        for output in outputs
        if isinstance(output.data, dict) and "name" in output.data
    }


def compare(writes: WriteLog, found: dict[str, str]) -> tuple[list[str], int]:
    """Acknowledged writes missing from `found`, and how many nodes hold a value
    written after their last acknowledged one (never acknowledged, but landed)."""
    lost, superseded = [], 0
    for node, value in sorted(writes.acked.items()):
        now = found.get(node)
        if now == value:
            continue
        if now in writes.unacked.get(node, []):
            superseded += 1
        else:
            lost.append(f"{node}: acknowledged {value!r}, found {now!r}")
    return lost, superseded


def tail(text: str, lines: int) -> str:
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def logged_errors(log: str) -> Counter[str]:
    """The daemon's ERROR and CRITICAL log lines and tracebacks' last lines, by text."""
    found: Counter[str] = Counter()
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("ERROR", "CRITICAL")):
            found[line[:140]] += 1
        elif line.startswith("Traceback"):
            end = next((j for j in range(index + 1, len(lines)) if not lines[j][:1].isspace()), 0)
            found[f"traceback: {lines[end][:130]}"] += 1
    return found


# -- the report ------------------------------------------------------------------------


def print_load(run: Run, clients: int) -> None:
    """Requests served, what was done (by kind), errors (by kind, with an example)."""
    seconds = max(run.watch.seconds, 1.0)
    report("requests served", run.tally.served, "req")
    print(f"    {run.tally.served / seconds:.1f} req/s over {seconds:.0f} s from "
          f"{clients} client processes and the probe", flush=True)  # fmt: skip
    for kind, count in sorted(run.tally.done.items()):
        print(f"    {count:>8}  {kind}", flush=True)
    report("errors", sum(run.tally.errors.values()), "")
    for kind, count in run.tally.errors.most_common():
        print(f"    {count:>8}  {kind}  (e.g. {run.tally.samples[kind]})", flush=True)


def minutes_of(run: Run) -> int:
    return max(1, math.ceil(run.watch.seconds / 60 - 1e-9))


def per_minute(values: list[tuple[float, float]], minutes: int) -> list[list[float]]:
    """(seconds, value) pairs in one list per minute of the load."""
    buckets: list[list[float]] = [[] for _ in range(minutes)]
    for seconds, value in values:
        buckets[min(max(int(seconds // 60), 0), minutes - 1)].append(value)
    return buckets


def cpu_per_minute(
    samples: list[Sample], minutes: int, used: Callable[[Sample], float], cores: int
) -> list[float]:
    """Per minute, the CPU that `used` counts as a percentage of `cores` cores."""
    spent, elapsed = [0.0] * minutes, [0.0] * minutes
    for before, after in itertools.pairwise(samples):
        minute = min(int(after.seconds // 60), minutes - 1)
        spent[minute] += used(after) - used(before)
        elapsed[minute] += after.seconds - before.seconds
    return [100 * s / (e * cores) if e else math.nan for s, e in zip(spent, elapsed, strict=True)]


def print_minutes(run: Run) -> tuple[bool, bool]:
    """The per-minute table; whether the probe's p99 and the daemon's RSS met their targets."""
    minutes = minutes_of(run)
    latencies = per_minute([(t, v * 1000) for t, v in run.latencies], minutes)
    samples = run.watch.samples
    rss = per_minute([(s.seconds, s.rss_kib / 1024) for s in samples], minutes)
    fds = per_minute([(s.seconds, s.fds) for s in samples], minutes)
    daemon_cpu = cpu_per_minute(samples, minutes, lambda s: s.daemon_cpu, 1)
    host_cpu = cpu_per_minute(samples, minutes, lambda s: s.host_busy, os.cpu_count() or 1)
    print(f"{'minute':>6} {'probes':>7} {'p50 ms':>7} {'p99 ms':>7} {'VmRSS MiB':>10} "
          f"{'fds':>4} {'daemon CPU':>11} {'host CPU':>9}")  # fmt: skip
    for minute in range(minutes):
        lat = latencies[minute]
        print(
            f"{minute + 1:>6} {len(lat):>7} "
            f"{statistics.median(lat) if lat else math.nan:>7.1f} "
            f"{percentile(lat, 99) if lat else math.nan:>7.1f} "
            f"{max(rss[minute], default=math.nan):>10.1f} {max(fds[minute], default=0):>4.0f} "
            f"{daemon_cpu[minute]:>6.0f} % 1c {host_cpu[minute]:>5.0f} %",
            flush=True,
        )
    p99 = max((percentile(lat, 99) for lat in latencies if lat), default=math.inf)
    latency_ok = report(
        "probe p99, worst minute", p99, "ms", f"< {PROBE_P99_MS:g} ms", p99 < PROBE_P99_MS
    )
    slowest = sorted(run.latencies, key=lambda sample: -sample[1])[:SLOWEST]
    print("    slowest: " + ", ".join(f"{v * 1000:.0f} ms at {t:.1f} s" for t, v in slowest))
    return latency_ok, rss_growth(rss)


def rss_growth(rss: list[list[float]]) -> bool:
    """Peak VmRSS after the first minute against the first minute's peak."""
    first, later = max(rss[0], default=0.0), [v for minute in rss[1:] for v in minute]
    if not later or not first:
        print("VmRSS growth                     n/a (needs more than one minute)", flush=True)
        return True
    growth = max(later) - first
    return report(
        "VmRSS growth after minute 1",
        growth,
        "MiB",
        f"none, <= {RSS_TOLERANCE:.0%} of {first:.0f} MiB",
        growth <= first * RSS_TOLERANCE,
    )


def print_health(run: Run, health: Health | None, log: str) -> bool:
    """Open files, connections, exits, lost writes, logged errors; False when the
    daemon died or lost an acknowledged write."""
    alive = run.watch.died is None
    if health is not None and health.fds_after is not None:
        print(f"daemon open files before / after  {health.fds_before} / {health.fds_after}"
              f"  (target equal)  {'ok' if health.fds_after == health.fds_before else 'MISSED'}",
              flush=True)  # fmt: skip
        if health.connections is not None:
            report(
                "daemon connections after",
                health.connections,
                "",
                "1, ours",
                health.connections == 1,
            )
    report("daemon exits", 0 if alive else 1, "", "0", alive)
    if not alive:
        print(f"    DAEMON DIED: {run.watch.died}; its log ends:\n{tail(log, 15)}", flush=True)
    kept = health is not None and not health.lost
    if health is None:
        print("lost writes                    unchecked: the daemon could not be read", flush=True)
    else:
        report("lost writes", len(health.lost), "", "0", kept)
        print(f"    of {health.checked} nodes' last acknowledged usercomment", flush=True)
        for line in health.lost[:10]:
            print(f"    {line}", flush=True)
        if health.superseded:
            print(f"    {health.superseded} nodes hold a later unacknowledged write", flush=True)
        if health.revived:
            print("    (read back from the daemon started again on the same root)", flush=True)
    errors = logged_errors(log)
    print(f"daemon log: {len(log.splitlines())} lines, {len(log) / 1024:.0f} KiB", flush=True)
    report("daemon log: errors", sum(errors.values()), "lines")
    for text, count in errors.most_common(8):
        print(f"    {count:>6}  {text}", flush=True)
    return alive and kept


# -- the benchmark ---------------------------------------------------------------------


def main(minutes: float = MINUTES, clients: int = CLIENTS) -> int:
    """0 when the daemon lived and kept every acknowledged write, 1 otherwise."""
    with running_cluster() as cluster:
        assert cluster.process is not None
        files = prepare(cluster, NODES)
        warm_up(cluster, files)
        time.sleep(1)  # the warm-up's connections closed
        pid = cluster.process.pid
        fds_before = open_fds(pid)
        print(
            f"soak: {minutes:g} min against one daemon (pid {pid}, {os.cpu_count()} cores): "
            f"{clients} client processes over {NODES} nodes, {HTTP_DOWNLOADS} HTTP downloads of "
            f"{HTTP_MIB} MiB, {TFTP_DOWNLOADS} TFTP of {TFTP_MIB} MiB, {STATUS_RATE} status "
            f"reports/s, lsxcatd -v probe every {PROBE_EVERY * 1000:.0f} ms",
            flush=True,
        )
        begin = time.monotonic() + 2  # time for the processes to start
        nodes = [node_name(i) for i in range(1, NODES + 1)]
        plan = Plan(cluster.env, nodes, begin, begin + minutes * 60)
        run = run_load(cluster, plan, files, clients)
        soak_log = cluster.log  # a daemon started again for the check logs elsewhere
        try:
            health: Health | None = check_health(cluster, run, fds_before)
        except (BenchmarkFailure, ClientError, OSError, RuntimeError) as exc:
            print(f"after the load, the daemon could not be checked: {exc}", flush=True)
            health = None
        log = soak_log.read_text(errors="replace")
    print_load(run, clients)
    print_minutes(run)
    return 0 if print_health(run, health, log) else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=MINUTES, help="how long the load runs")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="client processes")
    return parser.parse_args()


if __name__ == "__main__":
    options = _arguments()
    try:
        sys.exit(main(options.minutes, options.clients))
    except BenchmarkFailure as failure:
        print(f"benchmark broken: {failure}", file=sys.stderr)
        sys.exit(2)
