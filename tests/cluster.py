"""A real cluster in a directory: `xcatd init --root`, `xcatd serve` as a
process on a free loopback port, and the real client commands pointed at it.

Used by the tests' fixtures and by the benchmarks, so both drive the product
exactly as an administrator would.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from xcatd.servicenode.restore import RESTORED

from .waiting import wait_for

BIN = Path(sys.executable).parent


def _unassigned_ports() -> range:
    """High ports the kernel never gives a connection's local end.

    A port the kernel picked for bind(0) lies in its ephemeral range, where
    any connection opened before the daemon binds it may take it as its own
    end ("Address already in use" at start).  Below that range no outgoing
    connection lands.
    """
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return range(20000, low) if low > 21000 else range(high + 1, 65536)


_PORTS = _unassigned_ports()
_turn = itertools.count(random.randrange(len(_PORTS)))


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """An unused high TCP (or, with SOCK_DGRAM, UDP) port on loopback.

    Handed out in turn from a random start, so two clusters of one test run
    never get the same port and parallel runs rarely meet.
    """
    for _ in _PORTS:
        port = _PORTS[next(_turn) % len(_PORTS)]
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORTS}")


class Cluster:
    """`address` is where the daemon listens; `prefix` runs every program of
    the cluster (daemon and client) inside a network namespace, for tests
    that boot machines on a bridge there."""

    def __init__(
        self,
        root: Path,
        hostname: str = "mn1",
        address: str = "127.0.0.1",
        prefix: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.hostname = hostname
        self.address = address
        self.prefix = list(prefix)
        self.port = free_port()
        self.http_port = free_port()
        self.tftp_port = free_port(socket.SOCK_DGRAM)
        self.status_port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = root / "xcatd.log"

    @property
    def cred_dir(self) -> Path:
        return self.root / ".xcat"

    @property
    def ca_fingerprint(self) -> str:
        """The SHA-256 of the cluster CA's certificate, as nodeset gives it to nodes."""
        pem = (self.root / "etc/xcat/pki/ca.pem").read_bytes()
        der = ssl.PEM_cert_to_DER_cert(pem.decode())
        return hashlib.sha256(der).hexdigest()

    @property
    def env(self) -> dict[str, str]:
        """The environment a user of this cluster has."""
        env = dict(os.environ)
        env["XCATHOST"] = f"{self.address}:{self.port}"
        env["XCAT_CRED_DIR"] = str(self.cred_dir)
        env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
        return env

    def init(self, *extra: str) -> subprocess.CompletedProcess:
        return self.xcatd(
            "init",
            "--hostname",
            self.hostname,
            "--listen",
            self.address,
            "--port",
            str(self.port),
            "--http-port",
            str(self.http_port),
            "--tftp-port",
            str(self.tftp_port),
            "--status-port",
            str(self.status_port),
            *extra,
        )

    def xcatd(self, action: str, *args: str) -> subprocess.CompletedProcess:
        """A local `xcatd ACTION --root ROOT ...`, as root on the management node runs it."""
        return subprocess.run(
            [BIN / "xcatd", action, "--root", str(self.root), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start `xcatd serve` and wait until it accepts connections."""
        logged_before = len(self.logs())  # a restart appends to the same log
        self.process = subprocess.Popen(
            [*self.prefix, BIN / "xcatd", "serve", "--root", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            env=env or self.env,
        )
        # It logs this once every port (its own and the boot services') is open;
        # a log line works from outside the daemon's network namespace too.
        ready = f"serving on port {self.port}"

        def serving() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"xcatd exited with {self.process.returncode}:\n{self.logs()}")
            return ready in self.logs()[logged_before:]

        wait_for(serving, lambda: f"xcatd listening:\n{self.logs()}", timeout=20)

    def start_restored(self, timeout: float = 20) -> str:
        """Start a service node's daemon and wait until it has set its nodes
        up again from the MN's definitions, as it does at every start
        (servicenode/restore.py), so that a test's requests meet it done;
        the line it logged of that."""
        logged = len(self.logs())
        self.start()

        def restored() -> str:
            lines = self.logs()[logged:].splitlines()
            return next((line for line in lines if RESTORED in line), "")

        return wait_for(restored, lambda: self.logs()[logged:], timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the daemon and wait for it to exit; its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def run(
        self,
        command: str,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess:
        """Run a client command (`lsxcatd -a`, ...) as a user of this cluster."""
        return subprocess.run(
            [*self.prefix, BIN / command, *args],
            capture_output=True,
            text=True,
            input=input,
            env=env or self.env,
            timeout=timeout,
        )

    def ok(self, command: str, *args: str, timeout: float = 60) -> str:
        """Run a client command that must succeed; what it printed."""
        result = self.run(command, *args, timeout=timeout)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def outcome(self, command: str, *args: str) -> tuple[int, str, str]:
        """Run a client command; its return code, standard output and error."""
        result = self.run(command, *args)
        return result.returncode, result.stdout, result.stderr

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def audited(self, command: str, columns: str, at_least: int = 1) -> list[tuple]:
        """`columns` of the audit records of `command`, in order, once at least
        `at_least` are there: the daemon writes them a moment after it answers."""
        query = f"select {columns} from audit where command = ? order by id"

        def rows() -> list[tuple]:
            with sqlite3.connect(self.root / "var/lib/xcat/xcat.sqlite") as db:
                return db.execute(query, [command]).fetchall()

        wait_for(lambda: len(rows()) >= at_least, f"{at_least} audit records of {command}")
        return rows()
