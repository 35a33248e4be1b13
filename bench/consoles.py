"""The daemon's memory while it holds N open consoles (target: 500 under 300 MiB).

Each node's BMC is a real OpenIPMI ipmi_sim on its own loopback address and
port serving Serial over LAN (tests/bmc.py with `console=True`; the chassis
is bench/chassis_state.sh, no machine, so the consoles are idle).  Each
console is opened the way an administrator opens it: the real `rcons` client
attaches and leaves at once (`Ctrl-E c .` on its standard input), CLIENTS at
a time; the daemon keeps the session.  Every session is checked to be up
(the daemon logs `<node>: console up` once per session) before the daemon's
VmRSS is read, and again after SETTLE seconds with every session held.

    .venv/bin/python -m bench.consoles [--bmcs N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests.bmc import bmc_lab
from tests.cluster import BIN, Cluster

from .common import report, running_cluster
from .objects import BenchmarkFailure, reported, status_kib
from .power import CHASSIS, PASSWORD, write_stanzas

BMCS = 500
TARGET_MIB = 300.0
CLIENTS = 8  # rcons clients at once while the consoles are opened
SETTLE = 35.0  # seconds: past pyghmi's 29 s keepalive, so every session has kept itself alive
LEAVE = b"\x05c."


def main(count: int = BMCS) -> bool:
    if shutil.which("ipmi_sim") is None:
        print("FAILED: ipmi_sim is not installed (bash .ci/install)", file=sys.stderr)
        return False
    return reported(lambda: _measure(count))


def _measure(count: int) -> bool:
    with running_cluster() as cluster, bmc_lab(CHASSIS) as lab:
        assert cluster.process is not None
        pid = cluster.process.pid
        bmcs = lab.start(count, password=PASSWORD, console=True)
        stanzas = cluster.root.parent / "nodes.stanza"
        write_stanzas(stanzas, bmcs)
        stanzas.write_text(stanzas.read_text().replace("    mgt=ipmi\n", "    cons=ipmi\n"))
        _define(cluster, stanzas)
        before = status_kib(pid, "VmRSS") / 1024
        started = time.perf_counter()
        nodes = [f"node{i:03d}" for i in range(1, count + 1)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            opened_ok = list(pool.map(lambda node: _open(cluster, node), nodes))
        failed = [node for node, ok in zip(nodes, opened_ok, strict=True) if not ok]
        if failed:
            raise BenchmarkFailure(f"rcons failed for {len(failed)} nodes, first {failed[0]}")
        seconds = time.perf_counter() - started
        _check_up(cluster, count)
        opened = status_kib(pid, "VmRSS") / 1024
        time.sleep(SETTLE)
        _check_up(cluster, count)
        held = status_kib(pid, "VmRSS") / 1024
    print(f"{count} ipmi_sim BMCs with SOL; consoles opened by rcons, {CLIENTS} at a time")
    report("daemon VmRSS before", before, "MiB")
    report(f"opening {count} consoles", seconds, "s")
    report(f"daemon VmRSS, {count} open", opened, "MiB")
    label = f"daemon VmRSS, {count} after {SETTLE:.0f} s"
    if count >= BMCS:
        return report(label, held, "MiB", f"< {TARGET_MIB:.0f} MiB", held < TARGET_MIB)
    # Fewer consoles than the target's: what each one costs, scaled to BMCS.
    report(label, held, "MiB")
    scaled = before + (held - before) * BMCS / count
    return report(f"  scaled to {BMCS} consoles", scaled, "MiB",
                  f"< {TARGET_MIB:.0f} MiB", scaled < TARGET_MIB)  # fmt: skip


def _define(cluster: Cluster, stanzas) -> None:
    result = subprocess.run([BIN / "mkdef", "-z"], stdin=stanzas.open("rb"), capture_output=True,
                            env=cluster.env)  # fmt: skip
    if result.returncode:
        raise BenchmarkFailure(f"mkdef -z: {result.stderr.decode()[-300:]}")


def _open(cluster: Cluster, node: str) -> bool:
    """rcons attaches to the node's console and leaves at once."""
    result = subprocess.run([BIN / "rcons", node], input=LEAVE, capture_output=True,
                            env=cluster.env, timeout=60)  # fmt: skip
    return result.returncode == 0


def _check_up(cluster: Cluster, count: int) -> None:
    logs = cluster.logs()
    up = logs.count(": console up")
    lost = logs.count(": console lost")
    if up != count or lost:
        raise BenchmarkFailure(f"{up} consoles came up and {lost} were lost, of {count}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.consoles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bmcs", type=int, default=BMCS, help="simulated BMCs (and consoles)")
    sys.exit(0 if main(parser.parse_args().bmcs) else 1)
