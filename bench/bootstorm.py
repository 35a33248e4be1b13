"""Boot storm: N nodes network-booting at once from one daemon, beside tftpd-hpa + nginx.

A real daemon (benched(): its memory sampled) holds N iPXE nodes, each on
its own loopback address 127.1.x.y, an osimage packed by the real
packimage (zstd) from a root holding --image-mb MiB of random bytes (the
image is about that size), and boot files written by the real `nodeset`;
site.dhcpsetup=n, as no DHCP is played.  Each node (bench/stormnode.py:
curl for every transfer, from the node's address) fetches the iPXE program
over TFTP, then its script, kernel, initrd, the image's checksum and the
image over HTTP, and reports `netbooting` and `booted`; the nodes arrive
spread evenly over --window seconds.  Then the same storm again with the
files from tftpd-hpa + nginx (nginx-light: sendfile on, worker_processes
auto), serving the same directories at the same paths; the status reports
still go to the daemon, which is what its CPU figure then counts.  While
each storm runs, an administrator's `lsxcatd -v` goes every PROBE_EVERY:
the whole command, and the same request on a kept connection (the daemon's
own share of it).  With --rootimgdir, the image is packed from a real
image's root instead (a genimage'd rootimgdir: rootimg/, kernel and
initrd-stateless.gz, copied into the bench's cluster first), so the storm
moves what a real boot moves.

On one machine the simulated nodes share the cores with the servers,
whereas real nodes bring their own: the storm runs as a process of its own
in a cgroup of the smallest CPU weight (bench/cpugroup.py; its curls at
nice NODES_NICE too), so that the servers, and the administrator, get the
cores first, in both storms alike; only the status reports' curls run
outside it (their round trip is the daemon's answer, not a core's wait).

Per N (default 100, 500, 1,000): time until the last node has all its
bytes, p50/p99 per-node boot-fetch time (arrival to image), aggregate
bytes/s, failed nodes and retried transfers, daemon CPU and peak RSS, the
status reports' round trips and the `lsxcatd -v` latency; `nodestat -t`
must then show every node booted.  Targets: zero failed boots; last node
within 115 % of tftpd-hpa + nginx; daemon peak RSS < 500 MiB; `lsxcatd -v`
p99 < 200 ms; every `booted` recorded.

    .venv/bin/python -m bench.bootstorm [--nodes N ...] [--image-mb N | --rootimgdir DIR]
                                        [--window S]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from tests.cluster import BIN, free_port
from xcatd.layout import Layout

from . import cpugroup, stormnode
from .common import percentile, report
from .cpugroup import CpuGroup
from .http import start_nginx
from .objects import Bench, BenchmarkFailure, benched, cpu_seconds, reported
from .soak import call, open_connection

SIZES = (100, 500, 1000)
IMAGE_MB = 300
WINDOW = 10.0  # seconds over which the nodes arrive
NODES_NICE = 10
PROBE_EVERY = 0.5  # seconds between an administrator's lsxcatd -v
RATIO_TARGET = 1.15
RSS_TARGET_MIB = 500
LSXCATD_TARGET = 0.2  # seconds, p99
IMAGE = "storm"


def write_stanzas(path: Path, count: int) -> None:
    with path.open("w") as out:
        out.write("# <xCAT data object stanza file>\n")
        for i in range(1, count + 1):
            mac = f"52:54:01:00:{i >> 8 & 255:02x}:{i & 255:02x}"
            out.write(
                f"\n{stormnode.node_name(i)}:\n    objtype=node\n    groups=all\n"
                f"    ip={stormnode.address(i)}\n    mac={mac}\n"
                "    netboot=xnba\n    arch=x86_64\n"
            )


def make_image(bench: Bench, image: int | Path) -> None:
    """An osimage packed by packimage: from a real image's rootimgdir, or
    about `image` MiB (random bytes do not compress)."""
    rootimgdir = bench.cluster.root / "install/netboot/debian12/x86_64" / IMAGE
    if isinstance(image, Path):
        rootimgdir.parent.mkdir(parents=True)
        # cp: a root holds device nodes and links, which it copies as they are.
        subprocess.run(["cp", "-a", str(image), str(rootimgdir)], check=True)
    else:
        random_image(rootimgdir, image)
    bench.run("mkdef", "-t", "osimage", "-o", IMAGE, "provmethod=netboot", "osvers=debian12",
              "osarch=x86_64", "profile=compute", f"rootimgdir={rootimgdir}")  # fmt: skip
    bench.run("packimage", "-c", "zstd", IMAGE)


def random_image(rootimgdir: Path, image_mb: int) -> None:
    (rootimgdir / "rootimg/etc").mkdir(parents=True)
    (rootimgdir / "rootimg/etc/hostname").write_text("node\n")
    with (rootimgdir / "rootimg/filler").open("wb") as out:
        for _ in range(image_mb):
            out.write(os.urandom(1 << 20))
    (rootimgdir / "kernel").write_bytes(os.urandom(8 << 20))  # about a real kernel's size
    (rootimgdir / "initrd-stateless.gz").write_bytes(os.urandom(40 << 20))


def prepare(bench: Bench, count: int, image: int | Path) -> Path:
    """Nodes, image and boot files in the daemon; the packed image's path."""
    cluster = bench.cluster
    work = cluster.root.parent
    write_stanzas(work / "nodes.stanza", count)
    bench.run("mkdef", "-z", stdin=work / "nodes.stanza")
    bench.run("chdef", "-t", "site", "dhcpsetup=n")
    bench.run("mkdef", "-t", "network", "-o", "lo", "net=127.0.0.0", "mask=255.0.0.0")
    make_image(bench, image)
    bench.run("nodeset", "all", f"osimage={IMAGE}")
    packfile = bench.run("lsdef", "-t", "osimage", "-o", IMAGE, "-i", "packfile").stdout
    path = Path(packfile.decode().split("packfile=")[1].strip())
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # page cache
    return path


# -- an administrator during the storm ----------------------------------------------


class Prober(threading.Thread):
    """`lsxcatd -v` every PROBE_EVERY until stopped: the whole command's seconds, and
    the same request's on a kept connection.  A thread: the storm's own event loop
    must not delay it."""

    def __init__(self, bench: Bench) -> None:
        super().__init__(name="lsxcatd-probe", daemon=True)
        self.bench = bench
        self.command: list[float] = []
        self.request: list[float] = []
        self.failures: list[str] = []
        self._finished = threading.Event()

    def run(self) -> None:
        env = self.bench.cluster.env
        connection = open_connection(env)
        try:
            while not self._finished.wait(PROBE_EVERY):
                started = time.perf_counter()
                done = subprocess.run([BIN / "lsxcatd", "-v"], env=env, capture_output=True)
                self.command.append(time.perf_counter() - started)
                started = time.perf_counter()
                rc, _ = call(connection, "lsxcatd", ["-v"])
                self.request.append(time.perf_counter() - started)
                if done.returncode or rc:
                    self.failures.append(done.stderr.decode().strip() or f"rc {rc}")
        finally:
            connection.close()

    def stop(self) -> None:
        self._finished.set()
        self.join()


# -- one storm ---------------------------------------------------------------------


@dataclass
class Storm:
    label: str
    outcomes: list[stormnode.Outcome]
    started: float
    daemon_cpu: float
    loop_cpu: float  # the daemon's main thread: its event loop
    peak_mib: float
    prober: Prober
    booted: int = 0  # nodes nodestat shows booted after it

    @property
    def finished(self) -> list[stormnode.Outcome]:
        return [o for o in self.outcomes if o.done is not None]

    @property
    def last(self) -> float:
        """Seconds from the storm's start until the last node had all its bytes."""
        return max((o.done for o in self.finished), default=float("nan")) - self.started


def storm(bench: Bench, label: str, count: int, servers: stormnode.Servers, window: float,
          nodes: CpuGroup | None) -> Storm:  # fmt: skip
    """The storm's nodes in their own process, in `nodes` when there is one."""
    bench.run("chdef", "all", "status=defined")
    command = [sys.executable, "-m", "bench.stormnode", "--nodes", str(count),
               "--window", str(window), "--tftp", servers.tftp, "--http", servers.http,
               "--tftpdir", str(servers.tftpdir), "--nice", str(servers.nice)]  # fmt: skip
    spawn: dict[str, object] = {}
    if nodes is not None:
        command += ["--reports-cgroup", str(nodes.home)]
        spawn["preexec_fn"] = partial(cpugroup.join, nodes.path)
    prober = Prober(bench)
    bench.sampler.phase()
    cpu, loop = cpu_seconds(bench.pid), cpu_seconds(bench.pid, bench.pid)
    prober.start()
    started = time.monotonic()
    try:
        ran = subprocess.run(command, stdout=subprocess.PIPE, check=True, **spawn)
    finally:
        prober.stop()
    outcomes = stormnode.outcomes_from(ran.stdout.decode())
    result = Storm(label, outcomes, started, cpu_seconds(bench.pid) - cpu,
                   cpu_seconds(bench.pid, bench.pid) - loop, bench.sampler.phase() / 1024,
                   prober)  # fmt: skip
    shown = bench.run("nodestat", "all", "-t").stdout.decode().splitlines()
    result.booted = sum("booted" in line for line in shown)
    return result


# -- the reference servers -------------------------------------------------------


async def _reference(tftpdir: Path, prefix: Path, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """tftpd-hpa and nginx until cancelled; task_status gets their ports."""
    tftp_port = free_port(socket.SOCK_DGRAM)
    async with trio.open_nursery() as nursery:
        command = ["in.tftpd", "--foreground", "--listen", "--address", f"127.0.0.1:{tftp_port}",
                   "--user", "root", "--secure", str(tftpdir)]  # fmt: skip
        nursery.start_soon(partial(trio.run_process, command, check=False))
        http_port = await start_nginx(nursery, prefix)
        task_status.started((tftp_port, http_port))


def main(
    sizes: tuple[int, ...] = SIZES, image: int | Path = IMAGE_MB, window: float = WINDOW
) -> bool:
    """`image`: MiB of random bytes, or a real image's rootimgdir."""
    return reported(lambda: _measure(sizes, image, window))


def _measure(sizes: tuple[int, ...], image: int | Path, window: float) -> bool:
    with benched() as bench, cpugroup.low_weight() as nodes:
        cluster = bench.cluster
        tftpdir = Layout.for_root(cluster.root).tftpdir
        packed = prepare(bench, max(sizes), image)
        print(f"boot storm: {packed.stat().st_size / 2**20:.0f} MiB image, arrivals over "
              f"{window:g} s, {os.cpu_count()} cores", flush=True)  # fmt: skip
        print(f"the nodes' processes: nice {NODES_NICE}, " + (
            f"in a cgroup of the smallest CPU weight ({nodes.path})" if nodes else
            "no cgroup (cannot make one here: they compete for the cores one by one)"),
            flush=True)  # fmt: skip
        ours = stormnode.Servers(f"127.0.0.1:{cluster.tftp_port}",
                                 f"127.0.0.1:{cluster.http_port}", tftpdir, NODES_NICE)  # fmt: skip
        ok = True
        for count in sizes:
            xcatd = storm(bench, "xcatd", count, ours, window, nodes)
            theirs = with_reference(bench, count, tftpdir, window, nodes)
            ok &= figures(count, xcatd, theirs)
    return ok


def with_reference(
    bench: Bench, count: int, tftpdir: Path, window: float, nodes: CpuGroup | None
) -> Storm:
    """The storm with the files from tftpd-hpa + nginx, started for it and stopped after."""
    prefix = bench.cluster.root.parent / "nginx"
    prefix.mkdir(exist_ok=True)
    ports: list[int] = []
    done = threading.Event()

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            ports.extend(await nursery.start(_reference, tftpdir, prefix))
            await trio.to_thread.run_sync(done.wait)
            nursery.cancel_scope.cancel()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    while not ports:
        if not thread.is_alive():
            raise BenchmarkFailure("tftpd-hpa or nginx did not start")
        time.sleep(0.05)
    tftp_port, http_port = ports
    servers = stormnode.Servers(
        f"127.0.0.1:{tftp_port}", f"127.0.0.1:{http_port}", tftpdir, NODES_NICE
    )
    try:
        return storm(bench, "tftpd-hpa + nginx", count, servers, window, nodes)
    finally:
        done.set()
        thread.join()


def figures(count: int, ours: Storm, theirs: Storm) -> bool:
    print(f"\n{count:,} nodes", flush=True)
    ok = True
    for each in (ours, theirs):
        print(f"  {each.label}", flush=True)
        ok &= storm_figures(count, each, each is ours)
    ratio = ours.last / theirs.last
    ok &= report("  last node, xcatd / reference", 100 * ratio, "%", f"<= {RATIO_TARGET:.0%}",
                 ratio <= RATIO_TARGET)  # fmt: skip
    return ok


def storm_figures(count: int, storm: Storm, is_daemon: bool) -> bool:
    outcomes = storm.outcomes
    fetch = [o.done - o.arrived for o in storm.finished] or [float("nan")]
    status = [s for o in outcomes for s in o.status_seconds] or [float("nan")]
    connect = [s for o in outcomes for s in o.status_connect] or [float("nan")]
    failed = [o for o in outcomes if o.failure is not None]
    moved = sum(o.fetched for o in outcomes)
    ok = report("    last node has its bytes", storm.last, "s")
    print(f"    per-node fetch p50 / p99       {percentile(fetch, 50):.1f} / "
          f"{percentile(fetch, 99):.1f} s", flush=True)  # fmt: skip
    report("    aggregate", moved / 2**20 / storm.last, "MiB/s")
    ok &= report("    failed boots", len(failed), "", "0", not failed)
    report("    retried transfers", sum(o.retries for o in outcomes), "")
    for outcome in failed[:3]:
        print(f"      {outcome.node}: {outcome.failure}", flush=True)
    report("    daemon CPU", storm.daemon_cpu, "s")
    report("      of it its event loop", storm.loop_cpu, "s")
    if is_daemon:
        ok &= report("    daemon peak RSS", storm.peak_mib, "MiB", f"< {RSS_TARGET_MIB} MiB",
                     storm.peak_mib < RSS_TARGET_MIB)  # fmt: skip
    print(f"    status report p50 / p99        {1000 * percentile(status, 50):.0f} / "
          f"{1000 * percentile(status, 99):.0f} ms", flush=True)  # fmt: skip
    print(f"      of it TCP connect p50 / p99  {1000 * percentile(connect, 50):.0f} / "
          f"{1000 * percentile(connect, 99):.0f} ms", flush=True)  # fmt: skip
    prober = storm.prober
    p99 = percentile(prober.command, 99) if prober.command else float("nan")
    ok &= report("    lsxcatd -v p99 (command)", 1000 * p99, "ms",
                 f"< {LSXCATD_TARGET * 1000:.0f} ms", p99 < LSXCATD_TARGET)  # fmt: skip
    if prober.command:
        print(f"      p50 {1000 * statistics.median(prober.command):.0f} ms over "
              f"{len(prober.command)}; the request alone p50 / p99 "
              f"{1000 * statistics.median(prober.request):.0f} / "
              f"{1000 * percentile(prober.request, 99):.0f} ms", flush=True)  # fmt: skip
    ok &= report("    nodestat: booted", storm.booted, "", f"{count}", storm.booted == count)
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.bootstorm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=SIZES, help="storm sizes")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image-mb", type=int, default=IMAGE_MB, help="size of a random image")
    source.add_argument("--rootimgdir", type=Path, help="a real image's rootimgdir to pack")
    parser.add_argument("--window", type=float, default=WINDOW, help="seconds of arrivals")
    arguments = parser.parse_args()
    if arguments.rootimgdir is not None and not (arguments.rootimgdir / "rootimg").is_dir():
        parser.error(f"{arguments.rootimgdir} holds no rootimg/: give a genimage'd rootimgdir")
    image = arguments.rootimgdir or arguments.image_mb
    sys.exit(0 if main(tuple(arguments.nodes), image, arguments.window) else 1)
