"""rpower over 500 BMCs, beside ipmitool over the same BMCs in the same run.

Each BMC is a real OpenIPMI ipmi_sim on its own loopback address and port
(tests/bmc.py), its chassis bench/chassis_state.sh: the power is a 0 or 1 in
a file, no machine, so that what is measured is the IPMI side (a login, Get
Chassis Status and, for `on`, Chassis Control per node) plus ipmi_sim running
its chassis program.  Nodes node001..node500 in group `all`, each with its
own bmc and bmcport, mgt=ipmi and the credentials.  Each figure is the median
of RUNS whole runs of the real client, every node's line checked; before
each `on` run every BMC is switched off again (in its file).  Targets:

- `rpower all stat`: under 3 s
- `rpower all on`: under 10 s

For comparison, printed without a target: ipmitool (lanplus, -C 3) once per
BMC with `xargs -P 32`, `power status` and `power on` over the same BMCs.

    .venv/bin/python -m bench.power [--bmcs N] [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

from tests.bmc import USER, Bmc, bmc_lab

from .common import report, running_cluster
from .objects import Bench, BenchmarkFailure, MemorySampler, Ran, command_figure, reported

BMCS = 500
RUNS = 3
STAT_TARGET = 3.0  # seconds
ON_TARGET = 10.0
PARALLEL = 32  # ipmitool processes at once (xargs -P)
PASSWORD = "bench-secret"
CHASSIS = ("/bin/sh", str(Path(__file__).with_name("chassis_state.sh")))


def main(count: int = BMCS, runs: int = RUNS) -> bool:
    missing = [p for p in ("ipmi_sim", "ipmitool") if shutil.which(p) is None]
    if missing:
        print(f"FAILED: {', '.join(missing)} not installed (bash .ci/install)", file=sys.stderr)
        return False
    return reported(lambda: _measure(count, runs))


def _measure(count: int, runs: int) -> bool:
    with running_cluster() as cluster, bmc_lab(CHASSIS) as lab:
        started = time.perf_counter()
        bmcs = lab.start(count, password=PASSWORD)
        print(f"{count} ipmi_sim BMCs started in {time.perf_counter() - started:.1f} s", flush=True)
        assert cluster.process is not None
        sampler = MemorySampler(cluster.process.pid)
        sampler.start()
        try:
            bench = Bench(cluster, sampler)
            stanzas = cluster.root.parent / "nodes.stanza"
            write_stanzas(stanzas, bmcs)
            bench.run("mkdef", "-z", stdin=stanzas)
            ok = _figures(bench, bmcs, runs)
        finally:
            sampler.stop()
    return ok


def _figures(bench: Bench, bmcs: list[Bmc], runs: int) -> bool:
    count = len(bmcs)
    stat = [checked(bench.run("rpower", "all", "stat"), count, "off") for _ in range(runs)]
    ok = command_figure(f"rpower all stat ({count} BMCs)", stat, STAT_TARGET)
    report(f"ipmitool power status, -P {PARALLEL}", median(ipmitool(bmcs, runs, "status")), "s")
    on = []
    for _ in range(runs):
        switch_off(bmcs)
        on.append(checked(bench.run("rpower", "all", "on"), count, "on"))
    ok &= command_figure(f"rpower all on ({count} BMCs)", on, ON_TARGET)
    report(f"ipmitool power on, -P {PARALLEL}", median(ipmitool(bmcs, runs, "on")), "s")
    return ok


def write_stanzas(path: Path, bmcs: list[Bmc]) -> None:
    with path.open("w") as out:
        out.write("# <xCAT data object stanza file>\n")
        for i, bmc in enumerate(bmcs, 1):
            out.write(
                f"\nnode{i:03d}:\n    objtype=node\n    groups=all\n    mgt=ipmi\n"
                f"    bmc={bmc.address}\n    bmcport={bmc.port}\n"
                f"    bmcusername={USER}\n    bmcpassword={bmc.password}\n"
            )


def checked(ran: Ran, count: int, state: str) -> Ran:
    """The run, once every node answered `state`."""
    lines = ran.stdout.decode().splitlines()
    answered = [line for line in lines if line.endswith(f": {state}")]
    if len(answered) != count:
        raise BenchmarkFailure(f"{len(answered)} of {count} nodes said {state}: {lines[:3]!r}")
    return ran


def switch_off(bmcs: list[Bmc]) -> None:
    for bmc in bmcs:
        (bmc.directory / "power").write_text("0\n")


def ipmitool(bmcs: list[Bmc], runs: int, action: str) -> list[float]:
    """Seconds for `ipmitool ... power <action>` once per BMC, PARALLEL at a
    time (xargs -P), each of `runs` runs (BMCs switched off before each)."""
    targets = "".join(f"-H {b.address} -p {b.port} power {action}\n" for b in bmcs)
    command = ["xargs", "-P", str(PARALLEL), "-L", "1", "ipmitool", "-I", "lanplus", "-C", "3",
               "-U", USER, "-P", PASSWORD]  # fmt: skip
    seconds = []
    for _ in range(runs):
        switch_off(bmcs)
        start = time.perf_counter()
        result = subprocess.run(command, input=targets, capture_output=True, text=True)
        seconds.append(time.perf_counter() - start)
        if result.returncode != 0 or result.stdout.count("\n") != len(bmcs):
            raise BenchmarkFailure(f"ipmitool power {action}: {result.stderr[-500:]}")
    return seconds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.power",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bmcs", type=int, default=BMCS, help="simulated BMCs (and nodes)")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs of each command")
    options = parser.parse_args()
    sys.exit(0 if main(options.bmcs, options.runs) else 1)
