"""Serial over LAN (IPMI 2.0 payload 1) with a node's BMC, through pyghmi.

pyghmi runs SOL on its own event loop, which only moves while some thread
calls `wait_for_rsp`: the daemon's `Pump` is that thread, for every link at
once.  Whatever the BMC sends reaches the link's callbacks on a pyghmi
thread (the pump, or a worker waiting inside pyghmi); `send` blocks until
the BMC acknowledges.  So every call here is made from a worker thread,
never from the event loop.

One BMC user for everything: pyghmi keeps one session per BMC, user,
password and K_G, and a console that shared rpower's session would be
logged out by rpower's logout (or hang beside it).  The console logs in
with K_G set to the password, which is what IPMI uses when a BMC has no
K_G of its own (the same keys on the wire), so pyghmi gives the console a
session of its own.  A BMC with a K_G of its own is not supported (xcatd
has no attribute for it).  The BMC must allow two sessions of that user at
once (one SOL, one for rpower while the console is held), as BMCs do.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from pyghmi.exceptions import IpmiException
from pyghmi.ipmi.console import Console

from ..hw.ipmi import explained
from ..hw.target import HardwareError, NoAnswer
from .link import Link

log = logging.getLogger(__name__)

POLL = 0.05  # seconds between looks at a link being opened
PUMP_WAIT = 0.2  # the longest the pump waits in pyghmi before looking again


class SolLink(Link):
    """One SOL session with one BMC (see Link)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._console: Console | None = None
        self._session = None  # pyghmi's session, for logging out
        self._failure: str | None = None

    def open(self, timeout: float, pump: Pump) -> None:
        """Log in and activate SOL, taking it from any other client (as
        xCAT's console does); HardwareError when that fails or takes longer
        than `timeout` seconds."""
        target = self.target
        password = target.password.encode()
        try:
            self._console = Console(
                target.address,
                target.username.encode(),
                password,
                self._handle,
                port=target.port,
                force=True,
                kg=password,
            )
        except socket.gaierror as exc:
            raise HardwareError(f"cannot resolve BMC {target.address}: {exc.strerror}") from None
        except IpmiException as exc:
            raise explained(exc, target) from None
        except OSError as exc:
            raise HardwareError(f"BMC {target}: {exc.strerror or exc}") from None
        self._session = self._console.ipmi_session
        pump.start()
        deadline = time.monotonic() + timeout
        while not self._console.connected and self._failure is None:
            if time.monotonic() > deadline:
                self.close()
                raise NoAnswer(f"no answer from BMC {target}")
            time.sleep(POLL)
        with self._state:
            self._open = self._failure is None
        if not self._open:
            self.close()
            raise explained(IpmiException(self._failure), target)

    def send(self, data: bytes) -> None:
        """Keystrokes for the node (blocks until the BMC has them)."""
        if self._console is not None:
            self._console.send_data(data)

    def close(self) -> None:
        """Deactivate SOL and log out; never raises."""
        self._ended()
        for end in (self._console.close if self._console else None, self._logout):
            try:
                if end is not None:
                    end()
            except Exception:  # a session that cannot end cleanly is gone anyway
                log.debug("closing the console of BMC %s", self.target, exc_info=True)

    def _logout(self) -> None:
        if self._session is not None and self._session.logged:
            self._session.logout()

    def _handle(self, data) -> None:
        """pyghmi's callback: output (bytes), or a dict with an error or a notice."""
        if not isinstance(data, dict):
            self._on_data(bytes(data))
        elif "error" in data:
            reason = str(data["error"])
            with self._state:
                lost, self._open = self._open, False
                self._failure = self._failure or reason
            if lost:
                self._on_lost(reason)
        elif "info" in data:
            self._on_data(f"\r\n[{data['info']}]\r\n".encode())


class Pump:
    """The thread that runs pyghmi's event loop for every SOL link; started
    with the first link, it runs until `stop`."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sol-pump", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                Console.wait_for_rsp(PUMP_WAIT)
            except Exception:  # one BMC's bad packet must not stop every console
                log.exception("SOL: pyghmi failed; going on")
                time.sleep(PUMP_WAIT)
