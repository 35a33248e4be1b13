"""One node's console as the daemon holds it: the SOL or TCP link
(reconnected when the BMC or the port drops it), the log, the recent
history, the watchers and the one writer.

Output reaches the event loop from pyghmi's threads in order
(`TrioToken.run_sync_soon` keeps it), is added to the history and handed
to every watcher there; a watcher attaches in the same step as it is given
the history, so it sees every byte once, history first.  A watcher that
falls behind loses output (and is told), never slowing the console or the
other watchers.  Only the writer's keystrokes reach the node.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial

import trio

from ..hw.target import HardwareError, Target
from .link import Link
from .log import ConsoleLog
from .sol import Pump, SolLink
from .tcp import TERMINAL_SERVERS, TcpLink

log = logging.getLogger(__name__)

HISTORY_BYTES = 64 << 10  # what a new watcher sees first
WATCHER_QUEUE = 512  # pieces of output a watcher may lag behind
KEYSTROKE_QUEUE = 64
FIRST_RETRY = 1.0  # seconds before reconnecting a dropped console, doubling
LAST_RETRY = 60.0
CLOSE_TIMEOUT = 3.0  # for a BMC to take our logout when the daemon stops
HELP = "Enter `^Ec?' for help"
Item = bytes | str  # console output, or a notice for the watcher


class _Lost:
    """Set (on the loop) when one link breaks, with pyghmi's reason."""

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reason = ""

    def __call__(self, reason: str) -> None:
        self.reason = reason
        self.event.set()


@dataclass(eq=False)
class Watcher:
    """One attached rcons: what it is sent, and whether it may type."""

    who: str
    writes: bool = False
    told_read_only: bool = False
    lagging: bool = False
    _send: trio.MemorySendChannel[Item] = field(init=False)
    receive: trio.MemoryReceiveChannel[Item] = field(init=False)

    def __post_init__(self) -> None:
        self._send, self.receive = trio.open_memory_channel[Item](WATCHER_QUEUE)

    def put(self, item: Item) -> None:
        """Queue without waiting; a watcher too far behind loses output."""
        try:
            if self.lagging:
                self._send.send_nowait("output lost: this rcons was not reading fast enough")
                self.lagging = False
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.lagging = True
        except trio.ClosedResourceError:
            pass

    def close(self) -> None:
        self._send.close()


class ConsoleSession:
    """The console of `node` through the BMC `target`; `run` holds it."""

    def __init__(
        self,
        node: str,
        target: Target,
        log_file: ConsoleLog,
        pump: Pump,
        timeout: float,
        kept: bool = False,
    ) -> None:
        self.node = node
        self.target = target
        self.log = log_file
        self.pump = pump
        self.timeout = timeout  # seconds for one attempt to connect (the server's, as reloaded)
        self.kept = kept  # held by the server whatever happens, not only once connected
        self.history = bytearray()
        self.watchers: list[Watcher] = []
        self.writer: Watcher | None = None
        self.opened = trio.Event()  # the first attempt is over
        self.failure: HardwareError | None = None  # why the first attempt failed
        self.up = False
        self.scope = trio.CancelScope()
        self._keys, self._typed = trio.open_memory_channel[bytes](KEYSTROKE_QUEUE)
        self._token = trio.lowlevel.current_trio_token()

    async def run(self) -> None:
        """Connect, serve until the BMC drops the link, reconnect after a
        pause that doubles up to LAST_RETRY; end if the first attempt fails,
        unless the session is `kept` (then try again, as after a drop)."""
        try:
            with self.scope:
                await self._hold()
        finally:
            if not self.opened.is_set():  # stopped before its first attempt ended
                self.failure = HardwareError(f"the console of {self.node} was closed; try again")
                self.opened.set()

    async def _hold(self) -> None:
        delay = FIRST_RETRY
        while True:
            lost = _Lost()
            kind = TcpLink if self.target.method in TERMINAL_SERVERS else SolLink
            link = kind(self.target, self._from_bmc, partial(self._from_thread, lost))
            try:
                await trio.to_thread.run_sync(
                    link.open, self.timeout, self.pump, abandon_on_cancel=True
                )
            except HardwareError as exc:
                if not self.opened.is_set():
                    self.failure = exc
                    self.opened.set()
                    if not self.kept:
                        return
                self._event(f"console down: {exc}; next try in {delay:.0f} s")
                await trio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY)
                continue
            delay = FIRST_RETRY
            self.opened.set()
            await self._serve(link, lost)

    def stop(self, why: str | None = None) -> None:
        """End the session (its BMC or credentials changed, or the daemon
        stops; `why`, in its log and to its watchers, when it is let go)."""
        if why is not None:
            self._event(why)
        self.scope.cancel()
        for watcher in self.watchers:
            watcher.close()

    @contextmanager
    def attached(self, who: str, force: bool = False, spy: bool = False) -> Iterator[Watcher]:
        """A watcher, given the history first; the writer unless `spy` or
        someone else writes (`force` takes write access from them)."""
        watcher = Watcher(who)
        watcher.put(HELP)
        if self.history:
            watcher.put(bytes(self.history))
        if not self.up:
            watcher.put(f"console of {self.node} is down; reconnecting")
        self.watchers.append(watcher)
        if spy:
            watcher.put("read-only (spy) mode")
        elif self.writer is None or force:
            self._give_write(watcher)
        else:
            watcher.put(f"read-only: {self.writer.who} has write access; rcons -f takes it")
        try:
            yield watcher
        finally:
            self.watchers.remove(watcher)
            if self.writer is watcher:
                self.writer = None

    async def type(self, watcher: Watcher, data: bytes) -> None:
        """Keystrokes from a watcher: to the node if it is the writer."""
        if watcher is self.writer:
            try:
                self._keys.send_nowait(data)
            except trio.WouldBlock:  # the link is down, or the BMC stopped taking input
                watcher.put("the console is not taking input; keystrokes are discarded")
        elif not watcher.told_read_only:
            watcher.told_read_only = True
            watcher.put("read-only: keystrokes are discarded; rcons -f takes write access")

    def _give_write(self, watcher: Watcher) -> None:
        previous = self.writer
        if previous is not None:
            previous.writes = False
            previous.put(f"write access taken by {watcher.who} (rcons -f); you are read-only now")
        watcher.writes = True
        self.writer = watcher

    async def _serve(self, link: Link, lost: _Lost) -> None:
        """The open link: keystrokes to it until the BMC drops it."""
        self.up = True
        self._event("console up")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._forward_keys, link)
                await lost.event.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.up = False
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await trio.to_thread.run_sync(link.close, abandon_on_cancel=True)
        self._event(f"console lost: {lost.reason}; reconnecting")

    async def _forward_keys(self, link: Link) -> None:
        async for data in self._typed:
            chunks = [data]
            while True:  # what was typed meanwhile goes in the same packet
                try:
                    chunks.append(self._typed.receive_nowait())
                except trio.WouldBlock:
                    break
            await trio.to_thread.run_sync(link.send, b"".join(chunks), abandon_on_cancel=True)

    def _from_bmc(self, data: bytes) -> None:
        """Output, on a pyghmi thread: logged there, then given to the loop."""
        self.log.output(data)
        self._from_thread(self._output, data)

    def _from_thread(self, function, *args) -> None:
        with suppress(trio.RunFinishedError):  # the daemon has stopped
            self._token.run_sync_soon(function, *args)

    def _output(self, data: bytes) -> None:
        self.history += data
        if len(self.history) > HISTORY_BYTES:
            del self.history[: len(self.history) - HISTORY_BYTES]
        for watcher in self.watchers:
            watcher.put(data)

    def _event(self, text: str) -> None:
        """A change of the console's state: in its log and to its watchers."""
        log.info("%s: %s", self.node, text)
        self.log.event(text)
        for watcher in self.watchers:
            watcher.put(text)
