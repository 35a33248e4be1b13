"""A real cluster in a directory: `xcatd init --root`, `xcatd serve` as a
process on a free loopback port, and the real client commands pointed at it.

Used by the tests' fixtures and by the benchmarks, so both drive the product
exactly as an administrator would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    """An unused high TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    def __init__(self, root: Path, hostname: str = "mn1") -> None:
        self.root = root
        self.hostname = hostname
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = root / "xcatd.log"

    @property
    def cred_dir(self) -> Path:
        return self.root / ".xcat"

    @property
    def env(self) -> dict[str, str]:
        """The environment a user of this cluster has."""
        env = dict(os.environ)
        env["XCATHOST"] = f"localhost:{self.port}"
        env["XCAT_CRED_DIR"] = str(self.cred_dir)
        env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
        return env

    def init(self, *extra: str) -> subprocess.CompletedProcess:
        return self.xcatd(
            "init",
            "--hostname",
            self.hostname,
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
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
        self.process = subprocess.Popen(
            [BIN / "xcatd", "serve", "--root", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            env=env or self.env,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"xcatd exited with {self.process.returncode}:\n{self.logs()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"xcatd did not start listening:\n{self.logs()}")

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
            [BIN / command, *args],
            capture_output=True,
            text=True,
            input=input,
            env=env or self.env,
            timeout=timeout,
        )

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
