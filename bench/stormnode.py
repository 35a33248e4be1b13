"""The simulated nodes of the boot storm: what each booting node fetches, in order.

Every transfer is a real client (curl, which speaks TFTP too) bound to the
node's own address, so the servers see one host per node, as they would:

1. its firmware's TFTP read of the iPXE program (blksize 1468 and no
   windowsize, as PXE ROMs and iPXE ask; curl sends tsize too, as they do);
2. iPXE's HTTP GET of the node's script (written by the real nodeset), then
   of the kernel and the initrd it names;
3. the initrd's report `netbooting`, its GET of the image's .sha256 and of
   the image (imgurl= of the script's kernel command line), then `booted`
   (the status URL is XCATSTATUS= of the same line).

A failed transfer is tried again, ATTEMPTS times in all and RETRY_PAUSE
apart (the initrd's own curl does about that), and counted; a node whose
transfer fails every time has failed its boot.  Bytes are checked by count
against the files' sizes: the node's real checksum would cost the one
machine that plays both sides a core of its own.

The storm runs as a process of its own (`python -m bench.stormnode`, which
prints its nodes' outcomes as JSON), so that bench.bootstorm can put it and
every curl it starts in a cgroup of small CPU weight (bench/cpugroup.py):
real nodes bring their own cores.  The status reports' curls are moved back
out of it (--reports-cgroup) before they run: what they measure is the
daemon's answer, which a real node does not wait for a core to see.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import trio

from . import cpugroup

TFTP_BLKSIZE = 1468  # the largest block an Ethernet frame holds, as PXE ROMs ask
ATTEMPTS = 3
RETRY_PAUSE = 2.0  # seconds
TIMEOUT = 900  # seconds any one transfer may take: far past a storm's worst


def address(i: int) -> str:
    """Node i's own loopback address (i from 1): 127.1.x.y, never the servers' 127.0.0.1."""
    return f"127.1.{i >> 8 & 255}.{i & 255}"


def node_name(i: int) -> str:
    return f"node{i:04d}"


@dataclass(frozen=True)
class Servers:
    """Where a node's files come from; status reports always go where its script says."""

    tftp: str  # host:port
    http: str  # host:port of the HTTP server, which serves every file at its absolute path
    tftpdir: Path  # what TFTP paths are relative to; HTTP paths are absolute
    nice: int = 0  # the clients' niceness
    reports_cgroup: Path | None = None  # where the status reports' curls run, when given

    def size(self, url: str) -> int:
        """The size of the file url names: what its transfer must bring."""
        scheme, _, path, _, _ = urllib.parse.urlsplit(url)
        return (self.tftpdir / path.lstrip("/") if scheme == "tftp" else Path(path)).stat().st_size

    def script(self, node: str) -> str:
        """The URL of the node's iPXE script, as nodeset wrote it."""
        return f"http://{self.http}{self.tftpdir}/xcat/xnba/nodes/{node}"

    def serving(self, url: str) -> str:
        """url as this HTTP server serves it (the script names the daemon's)."""
        return urllib.parse.urlsplit(url)._replace(netloc=self.http).geturl()


@dataclass
class Outcome:
    """What one node saw; times are seconds on the storm's clock (time.monotonic)."""

    node: str
    arrived: float
    done: float | None = None  # when the image was all there
    fetched: int = 0  # bytes
    retries: int = 0
    failure: str | None = None
    status_seconds: list[float] = field(default_factory=list)  # each report's round trip
    status_connect: list[float] = field(default_factory=list)  # of it, the TCP connect


class TransferFailed(Exception):
    pass


async def boot(node: str, address: str, servers: Servers) -> Outcome:
    """Play one node's network boot from `address`; never raises for the server's faults."""
    outcome = Outcome(node, time.monotonic())
    client = _Client(address, servers, outcome)
    try:
        await client.fetch(f"tftp://{servers.tftp}/xcat/xnba.kpxe", servers)
        script = await client.text(servers.script(node))
        kernel, initrd, imgurl, status = _script_urls(script)
        for url in (kernel, initrd):
            await client.fetch(servers.serving(url), servers)
        await client.report(status, node, "netbooting")
        image = servers.serving(imgurl)
        await client.fetch(image + ".sha256", servers)
        await client.fetch(image, servers)
        outcome.done = time.monotonic()
        await client.report(status, node, "booted")
    except TransferFailed as failure:
        outcome.failure = str(failure)
    return outcome


class _Client:
    def __init__(self, address: str, servers: Servers, outcome: Outcome) -> None:
        self.base = ["nice", "-n", str(servers.nice), "curl", "-sS", "-f", "--interface",
                     address, "--tftp-blksize", str(TFTP_BLKSIZE)]  # fmt: skip
        self.reporting: dict[str, object] = {}
        if servers.reports_cgroup is not None:
            self.reporting = {"preexec_fn": partial(cpugroup.join, servers.reports_cgroup)}
        self.outcome = outcome

    async def fetch(self, url: str, servers: Servers) -> None:
        """The whole file at url, thrown away once counted."""
        got = await self._curl(url, "-o", "/dev/null", "-w", "%{size_download}")
        expected = servers.size(url)
        if int(got) != expected:
            raise TransferFailed(f"{url}: {got} of {expected} bytes")
        self.outcome.fetched += expected

    async def text(self, url: str) -> str:
        return await self._curl(url)

    async def report(self, url: str, node: str, state: str) -> None:
        form = ["--data-urlencode", f"node={node}", "--data-urlencode", f"state={state}"]
        took = await self._curl(
            url, *form, "-o", "/dev/null", "-w", "%{time_connect} %{time_total}", **self.reporting
        )
        connect, total = took.split()
        self.outcome.status_connect.append(float(connect))
        self.outcome.status_seconds.append(float(total))

    async def _curl(self, url: str, *args: str, **spawn: object) -> str:
        """curl's standard output, once it succeeds; TransferFailed after ATTEMPTS tries.
        `spawn`: more for subprocess.Popen."""
        why = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                self.outcome.retries += 1
                await trio.sleep(RETRY_PAUSE)
            why = f"no answer in {TIMEOUT} s"
            with trio.move_on_after(TIMEOUT):
                done = await trio.run_process(
                    [*self.base, *args, url], capture_stdout=True, capture_stderr=True,
                    check=False, **spawn,
                )  # fmt: skip
                if done.returncode == 0:
                    return done.stdout.decode()
                why = done.stderr.decode().strip()
        raise TransferFailed(f"{url}: {why}")


_IMGFETCH = re.compile(r"^imgfetch -n (kernel|initrd) (\S+)$", re.MULTILINE)
_ARGUMENT = re.compile(r"\b(imgurl|XCATSTATUS)=(\S+)")


def _script_urls(script: str) -> tuple[str, str, str, str]:
    """The kernel's, the initrd's, the image's and the status URL of an iPXE script."""
    fetched = dict(_IMGFETCH.findall(script))
    arguments = dict(_ARGUMENT.findall(script))
    try:
        return fetched["kernel"], fetched["initrd"], arguments["imgurl"], arguments["XCATSTATUS"]
    except KeyError as missing:
        raise TransferFailed(f"the iPXE script names no {missing}:\n{script}") from None


async def storm(count: int, servers: Servers, window: float) -> list[Outcome]:
    """Nodes 1..count booting, arriving evenly over `window` seconds."""
    outcomes: list[Outcome] = []

    async def node(i: int) -> None:
        await trio.sleep(window * (i - 1) / count)
        outcomes.append(await boot(node_name(i), address(i), servers))

    async with trio.open_nursery() as nursery:
        for i in range(1, count + 1):
            nursery.start_soon(node, i)
    return outcomes


def outcomes_from(text: str) -> list[Outcome]:
    """The outcomes the storm's process printed."""
    return [Outcome(**fields) for fields in json.loads(text)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stormnode", description=__doc__)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--window", type=float, required=True)
    parser.add_argument("--tftp", required=True, help="host:port")
    parser.add_argument("--http", required=True, help="host:port")
    parser.add_argument("--tftpdir", type=Path, required=True)
    parser.add_argument("--nice", type=int, default=0)
    parser.add_argument("--reports-cgroup", type=Path, help="a cgroup directory")
    options = parser.parse_args()
    servers = Servers(options.tftp, options.http, options.tftpdir, options.nice,
                      options.reports_cgroup)  # fmt: skip
    outcomes = trio.run(partial(storm, options.nodes, servers, options.window))
    json.dump([dataclasses.asdict(outcome) for outcome in outcomes], sys.stdout)


if __name__ == "__main__":
    main()
