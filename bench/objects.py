"""Definition commands at scale: 100,000 nodes in 50 groups, ~12 attributes each.

The data set is built here: nodes node000001..node100000, each in `all` and
in one of rack01..rack50 (2,000 nodes per rack), with groups, ip and mac
(unique), bmc, bmcusername, mgt, netboot, arch, os, profile, serialport and
serialspeed, and status=booted on every 10th node.  It is written as a plain
stanza file (no `default-node:` stanza) and every figure is one whole run of
the real console script (`.venv/bin/mkdef` ...) against a real daemon, its
output going to a file or a pipe.  Targets (on a 2-core machine):

- `mkdef -z` of the whole stanza file: under 15 s
- `lsdef -t node -l` of every node, streamed to a file: under 6 s
- `nodels all`: under 1.5 s
- `lsdef -w status==booted -s`: under 1.5 s
- `chdef all status=booted`: under 5 s
- the noderange `node[000001-100000]`: under 0.5 s, both as a whole
  `nodels node[000001-100000]` and as `xcatd.store.noderange.expand` in this
  process against a `Nodes` snapshot loaded from the benchmark's database
- the daemon's resident memory: under 1 GiB throughout (VmRSS sampled every
  50 ms for the whole run, and the kernel's own high-water mark VmHWM)

`mkdef -z` runs once, `lsdef -l` and `chdef` up to 3 times, the quick
commands RUNS times; the median is the figure, and the fastest and slowest
are printed under it, so that a run disturbed by other work on the machine
shows.  Each command's figure is followed by the daemon's CPU time and its
peak VmRSS during that command.  Printed without a target, for comparison:
`Nodes.load` + `expand` in process (what the daemon does for the noderange
in each request), `chdef node[000001-100000] status=booted`, and `lsdef -w`
when every node matches.  Output is checked lightly (rc 0, line counts,
first and last names) and a wrong answer stops the run (exit status 1).

    .venv/bin/python -m bench.objects [--nodes N] [--runs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from tests.cluster import BIN, Cluster
from xcatd.layout import Layout
from xcatd.store.noderange import expand
from xcatd.store.nodes import Nodes

from .common import report, running_cluster

NODES = 100_000
RACKS = 50
RUNS = 5  # of each quick command; the median is the figure
MEMORY_LIMIT_MIB = 1024
SAMPLE_EVERY = 0.05  # seconds between VmRSS samples
TIMEOUT = 600  # seconds any one command may take before the run is declared broken


class BenchmarkFailure(Exception):
    """A command failed or answered wrongly: the figures would mean nothing."""


def reported(measure: Callable[[], bool]) -> bool:
    """A benchmark's outcome: its figures, or why it could not make them, in
    one line (False), never a traceback in the middle of the other benchmarks."""
    try:
        return measure()
    except BenchmarkFailure as failure:
        print(f"FAILED: {failure}", file=sys.stderr, flush=True)
        return False


# -- the data set --------------------------------------------------------------


def node_name(i: int) -> str:
    return f"node{i:06d}"


def write_stanzas(path: Path, count: int) -> None:
    """The data set as a stanza file: one plain stanza per node, ~12 attributes."""
    per_rack = -(-count // RACKS)
    with path.open("w") as out:
        out.write("# <xCAT data object stanza file>\n")
        for i in range(1, count + 1):
            rack = (i - 1) // per_rack + 1
            n = i - 1  # 0-based, for unique addresses
            lines = [
                f"\n{node_name(i)}:",
                "    objtype=node",
                f"    groups=all,rack{rack:02d}",
                f"    ip=10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                f"    mac=52:54:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
                f"    bmc=10.{128 + (n >> 16 & 127)}.{n >> 8 & 255}.{n & 255}",
                "    bmcusername=ADMIN",
                "    mgt=ipmi",
                "    netboot=xnba",
                "    arch=x86_64",
                "    os=rhels9.4",
                "    profile=compute",
                "    serialport=0",
                "    serialspeed=115200",
            ]
            if i % 10 == 0:
                lines.append("    status=booted")
            out.write("\n".join(lines) + "\n")


# -- the daemon's memory ---------------------------------------------------------


def status_kib(pid: int, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), in KiB; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time of a process, all its threads (or the one thread
    whose id is given: the main thread's is the pid), from /proc."""
    return sum(user_and_system_seconds(pid, thread))


def user_and_system_seconds(pid: int, thread: int | None = None) -> tuple[float, float]:
    """The user and the system (kernel) CPU time of cpu_seconds, apart."""
    with open(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class MemorySampler(threading.Thread):
    """The daemon's VmRSS every SAMPLE_EVERY seconds: the peak of the whole run,
    and the peak since `phase()` was last called."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="vmrss-sampler", daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.phase_peak_kib = 0
        self.samples = 0
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.is_set():
            self.sample()
            self._finished.wait(SAMPLE_EVERY)

    def sample(self) -> None:
        rss = status_kib(self.pid, "VmRSS")
        with self._lock:
            self.samples += 1
            self.peak_kib = max(self.peak_kib, rss)
            self.phase_peak_kib = max(self.phase_peak_kib, rss)

    def phase(self) -> int:
        """The peak since the previous call, in KiB; starts a new phase."""
        self.sample()
        with self._lock:
            peak, self.phase_peak_kib = self.phase_peak_kib, 0
        return peak

    def stop(self) -> None:
        self._finished.set()
        self.join()
        self.sample()


# -- running the client ------------------------------------------------------------


@dataclass
class Ran:
    seconds: float
    daemon_cpu: float
    daemon_peak_mib: float
    stdout: bytes  # empty when stdout went to a file


class Bench:
    def __init__(self, cluster: Cluster, sampler: MemorySampler) -> None:
        assert cluster.process is not None
        self.cluster, self.sampler = cluster, sampler
        self.pid = cluster.process.pid

    def run(
        self, command: str, *args: str, stdin: Path | None = None, stdout: Path | None = None
    ) -> Ran:
        """One whole client process, start to exit; fails loudly unless rc 0."""
        # Never inherit stdin: the client sends a piped or file stdin as the
        # request's input.
        with (
            open(stdin or os.devnull, "rb") as given,
            open(stdout, "wb") if stdout else contextlib.nullcontext(subprocess.PIPE) as out,
        ):
            self.sampler.phase()
            cpu = cpu_seconds(self.pid)
            start = time.perf_counter()
            result = subprocess.run(
                [*self.cluster.prefix, BIN / command, *args],  # in its namespace, if any
                stdin=given,
                stdout=out,
                stderr=subprocess.PIPE,
                env=self.cluster.env,
                timeout=TIMEOUT,
            )
            seconds = time.perf_counter() - start
            cpu = cpu_seconds(self.pid) - cpu
            peak = self.sampler.phase() / 1024
        if result.returncode != 0:
            raise BenchmarkFailure(
                f"{command} {' '.join(args)}: rc {result.returncode}\n"
                + result.stderr.decode(errors="replace")[-2000:]
            )
        return Ran(seconds, cpu, peak, result.stdout or b"")

    def repeat(self, runs: int, command: str, *args: str, lines: int) -> list[Ran]:
        """`runs` runs of a command whose stdout must be `lines` lines."""
        results = []
        for _ in range(runs):
            ran = self.run(command, *args)
            count = ran.stdout.count(b"\n")
            if count != lines:
                raise BenchmarkFailure(
                    f"{command} {' '.join(args)} printed {count} lines, expected {lines}:\n"
                    + ran.stdout[:500].decode(errors="replace")
                )
            results.append(ran)
        return results


@contextlib.contextmanager
def benched() -> Iterator[Bench]:
    """A running cluster to measure, its daemon's memory sampled while the block runs."""
    with running_cluster() as cluster:
        assert cluster.process is not None
        sampler = MemorySampler(cluster.process.pid)
        sampler.start()
        try:
            yield Bench(cluster, sampler)
        finally:
            sampler.stop()


def figure(label: str, seconds: list[float], target: float | None, extra: str = "") -> bool:
    """The median beside its target (in ms when that is under 2 s), then
    the spread of the runs and anything else worth knowing about them."""
    median = statistics.median(seconds)
    scale, unit = (1000, "ms") if (median if target is None else target) < 2 else (1, "s")
    ok = report(
        label,
        median * scale,
        unit,
        f"< {target * scale:g} {unit}" if target is not None else "",
        median < target if target is not None else None,
    )
    digits = 1 if unit == "ms" else 2
    spread = (
        f"median of {len(seconds)}: min {min(seconds) * scale:.{digits}f}, "
        f"max {max(seconds) * scale:.{digits}f} {unit}"
        if len(seconds) > 1
        else ""
    )
    if spread or extra:
        print(f"    {'; '.join(p for p in (spread, extra) if p)}", flush=True)
    return ok


def command_figure(label: str, runs: list[Ran], target: float | None = None) -> bool:
    """A command's figure, with the daemon's CPU time and peak VmRSS while it ran."""
    cpu = statistics.median(r.daemon_cpu for r in runs)
    peak = max(r.daemon_peak_mib for r in runs)
    note = f"daemon CPU {cpu:.2f} s, daemon peak VmRSS {peak:.0f} MiB"
    return figure(label, [r.seconds for r in runs], target, note)


# -- the benchmark ---------------------------------------------------------------


def main(count: int = NODES, runs: int = RUNS, keep: Path | None = None) -> bool:
    """Every figure beside its target; False when one is missed or a command fails."""
    return reported(lambda: _measure(count, runs, keep))


def _measure(count: int, runs: int, keep: Path | None) -> bool:
    slow_runs = max(1, min(runs, 3))  # of the commands that take seconds
    with running_cluster() as cluster:
        assert cluster.process is not None
        work = cluster.root.parent
        stanzas = work / "nodes.stanza"
        start = time.perf_counter()
        write_stanzas(stanzas, count)
        print(
            f"{count:,} nodes in {RACKS} racks + all, ~12 attributes each: stanza file "
            f"{stanzas.stat().st_size / 2**20:.1f} MiB, written in "
            f"{time.perf_counter() - start:.1f} s",
            flush=True,
        )
        sampler = MemorySampler(cluster.process.pid)
        sampler.start()
        bench = Bench(cluster, sampler)
        try:
            ok = _commands(bench, cluster, stanzas, count, runs, slow_runs)
        finally:
            sampler.stop()
            hwm_mib = status_kib(sampler.pid, "VmHWM") / 1024
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                _copy_database(Layout.for_root(cluster.root).database, keep / "xcat.sqlite")
                shutil.copy2(stanzas, keep / "nodes.stanza")
        peak_mib = sampler.peak_kib / 1024
        limit = f"< {MEMORY_LIMIT_MIB} MiB"
        ok &= report("daemon peak VmRSS (sampled)", peak_mib, "MiB", limit, peak_mib < 1024)
        print(f"    {sampler.samples} samples, every {SAMPLE_EVERY * 1000:.0f} ms", flush=True)
        ok &= report("daemon VmHWM (kernel's peak)", hwm_mib, "MiB", limit, hwm_mib < 1024)
    return ok


def _commands(
    bench: Bench, cluster: Cluster, stanzas: Path, count: int, runs: int, slow_runs: int
) -> bool:
    noderange = f"node[000001-{count:06d}]"
    booted = count // 10
    changed = f"{count} object definitions have been created or modified."

    # mkdef -z: once (importing again would need -f, and be another figure).
    ran = bench.run("mkdef", "-z", stdin=stanzas)
    if ran.stdout.decode().strip() != changed:
        raise BenchmarkFailure(f"mkdef -z said {ran.stdout[:300]!r}")
    ok = command_figure("mkdef -z (import)", [ran], 15)

    listing = stanzas.parent / "lsdef-l.txt"
    done = []
    for _ in range(slow_runs):
        done.append(bench.run("lsdef", "-t", "node", "-l", stdout=listing))
        _check_long_listing(listing, count, booted)
    ok &= command_figure("lsdef -t node -l > file", done, 6)

    done = bench.repeat(runs, "nodels", "all", lines=count)
    if not done[0].stdout.startswith(b"node000001\n"):
        raise BenchmarkFailure("nodels all does not start with node000001")
    ok &= command_figure("nodels all", done, 1.5)

    done = bench.repeat(runs, "lsdef", "-w", "status==booted", "-s", lines=booted)
    if not done[0].stdout.startswith(b"node000010  (node)\n"):
        raise BenchmarkFailure(f"lsdef -w printed {done[0].stdout[:100]!r}")
    ok &= command_figure("lsdef -w status==booted -s", done, 1.5)

    done = bench.repeat(runs, "nodels", noderange, lines=count)
    if not done[0].stdout.endswith(f"{node_name(count)}\n".encode()):
        raise BenchmarkFailure(f"nodels {noderange} does not end with {node_name(count)}")
    ok &= command_figure(f"nodels {noderange}", done, 0.5)
    ok &= _in_process_noderange(cluster, noderange, count, runs)

    # chdef of one attribute on every node, alternating the value so that every
    # run changes what is stored; it ends with every node booted.
    done = []
    for value in ["booted", "netbooting"] * (slow_runs // 2) + ["booted"] * (slow_runs % 2):
        done.append(bench.run("chdef", "all", f"status={value}"))
        if done[-1].stdout.decode().strip() != changed:
            raise BenchmarkFailure(f"chdef all status={value} said {done[-1].stdout[:300]!r}")
    if slow_runs % 2 == 0:
        bench.run("chdef", "all", "status=booted")
    ok &= command_figure("chdef all status=...", done, 5)
    command_figure(
        "chdef node[...] status=booted", [bench.run("chdef", noderange, "status=booted")]
    )
    done = bench.repeat(1, "lsdef", "-w", "status==booted", "-s", lines=count)
    command_figure("  lsdef -w, every node matching", done)
    return ok


def _copy_database(source: Path, destination: Path) -> None:
    """A consistent copy of the daemon's database (WAL included), for profiling."""
    with (
        contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(destination)) as dst,
    ):
        src.backup(dst)


def _check_long_listing(listing: Path, count: int, booted: int) -> None:
    objects = attributes = 0
    with listing.open("rb") as f:
        for line in f:
            if line.startswith(b"Object name: "):
                objects += 1
            elif line.startswith(b"    "):
                attributes += 1
    expected = count * 12 + booted
    if objects != count or attributes != expected:
        raise BenchmarkFailure(
            f"lsdef -l listed {objects} objects and {attributes} attribute lines, "
            f"expected {count} and {expected}"
        )


def _in_process_noderange(cluster: Cluster, noderange: str, count: int, runs: int) -> bool:
    """`expand` in this process against a `Nodes` snapshot of the benchmark's
    database: a fresh snapshot each run, as each request loads its own (one
    reused would keep what `expand` caches in it, such as static membership)."""
    path = Layout.for_root(cluster.root).database
    loads, expands = [], []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        db = sqlite_utils.Database(connection)
        for _ in range(runs):
            start = time.perf_counter()
            nodes = Nodes.load(db)
            loaded = time.perf_counter()
            names = expand(noderange, nodes)
            loads.append(loaded - start)
            expands.append(time.perf_counter() - loaded)
            if len(nodes.own) != count:
                raise BenchmarkFailure(f"the snapshot holds {len(nodes.own)} nodes, not {count}")
            if len(names) != count or names[-1] != node_name(count):
                raise BenchmarkFailure(f"expand({noderange!r}) gave {len(names)} names")
    ok = figure("  expand(), in process", expands, 0.5)
    both = [load + more for load, more in zip(loads, expands, strict=True)]
    figure("  Nodes.load() + expand()", both, None, "the daemon's part, in each request")
    return ok


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.objects",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nodes", type=int, default=NODES, help="nodes in the data set")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs of each quick command")
    parser.add_argument(
        "--keep", type=Path, help="copy the database and stanza file here, for profiling"
    )
    return parser.parse_args()


if __name__ == "__main__":
    options = _arguments()
    sys.exit(0 if main(options.nodes, options.runs, options.keep) else 1)
