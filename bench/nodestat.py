"""nodestat over 1,000 nodes that do not answer, and over 1,000 that do.

Everything runs inside a private network namespace (tests/netboot.py), the
daemon and the real client included, so no packet leaves it:

- the silent nodes are addresses on a tap device that no program reads,
  ARP off (tests/blackhole.py): every packet sent to them is dropped,
  neither answered nor refused, as by machines that are switched off;
- the nodes that answer are addresses of the namespace itself, with no
  service listening: each answers the echo and refuses every port.

Nodes node0001..node1000 (silent) in group `silent`, up0001..up1000 in
`up`, made with the real `mkdef -z`.  Each figure is the median of RUNS
whole runs of the real client, every node's line checked.  Target:

- `nodestat silent`: under 5 s, the daemon pinging as root does (raw ICMP)

Printed without a target: the same nodes for a daemon without CAP_NET_RAW
where no group may open ICMP datagram sockets (it tries every service port
of every node instead), and `nodestat up`.

    .venv/bin/python -m bench.nodestat [--nodes N] [--runs N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.blackhole import silent_network
from tests.cluster import Cluster
from tests.netboot import Network, network

from .objects import Bench, BenchmarkFailure, MemorySampler, command_figure, reported

NODES = 1000
RUNS = 3
TARGET = 5.0  # seconds for nodestat of NODES silent nodes
BRIDGE = "10.78.0.1/24"  # where the daemon listens
SILENT = "10.80.0.1/16"  # on the tap nobody reads
UP = "10.81"  # the answering nodes' addresses: 10.81.x.y/32 on the bridge
NO_NET_RAW = ("setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw")


def main(count: int = NODES, runs: int = RUNS) -> bool:
    return reported(lambda: _measure(count, runs))


def _measure(count: int, runs: int) -> bool:
    with (
        tempfile.TemporaryDirectory(prefix="xcatd-bench-") as tmp,
        network(Path(tmp), BRIDGE) as net,
    ):
        silent_network(net, SILENT)
        answering(net, count)
        stanzas = Path(tmp) / "nodes.stanza"
        write_stanzas(stanzas, count)
        with bench_of(Path(tmp) / "root", net, net.prefix, stanzas) as bench:
            ok = command_figure(
                f"nodestat of {count} silent nodes",
                checked(bench, "silent", count, "noping", runs),
                TARGET,
            )
            command_figure(
                f"nodestat of {count} nodes up", checked(bench, "up", count, "ping", runs)
            )
        with bench_of(Path(tmp) / "tcp", net, [*net.prefix, *NO_NET_RAW], stanzas) as bench:
            command_figure(
                f"the same, no ICMP ({count} silent)",
                checked(bench, "silent", count, "noping", runs),
            )
    return ok


def answering(net: Network, count: int) -> None:
    """`count` addresses of the namespace's own: they answer, nothing listens."""
    batch = net.workdir / "addresses.batch"
    batch.write_text(
        "".join(f"addr add {UP}.{i >> 8}.{i & 255}/32 dev {net.bridge}\n" for i in hosts(count))
    )
    net.ip("-batch", str(batch))


def hosts(count: int) -> range:
    return range(2, count + 2)  # x.y.0.2 onwards: never a network's own address


def write_stanzas(path: Path, count: int) -> None:
    silent = SILENT.split(".")[:2]
    with path.open("w") as out:
        out.write("# <xCAT data object stanza file>\n")
        for n, i in enumerate(hosts(count), 1):
            out.write(f"\nnode{n:04d}:\n    objtype=node\n    groups=silent\n")
            out.write(f"    ip={silent[0]}.{silent[1]}.{i >> 8}.{i & 255}\n")
            out.write(f"\nup{n:04d}:\n    objtype=node\n    groups=up\n")
            out.write(f"    ip={UP}.{i >> 8}.{i & 255}\n")


@contextmanager
def bench_of(root: Path, net: Network, prefix: list[str], stanzas: Path) -> Iterator[Bench]:
    """A daemon in the namespace (started with `prefix`), the nodes defined."""
    cluster = Cluster(root, address=net.server, prefix=prefix)
    initialised = cluster.init()
    if initialised.returncode != 0:
        raise BenchmarkFailure(f"xcatd init failed:\n{initialised.stderr}")
    cluster.start()
    try:
        assert cluster.process is not None
        sampler = MemorySampler(cluster.process.pid)
        sampler.start()
        try:
            bench = Bench(cluster, sampler)
            bench.run("mkdef", "-z", stdin=stanzas)
            yield bench
        finally:
            sampler.stop()
    finally:
        cluster.stop()


def checked(bench: Bench, group: str, count: int, state: str, runs: int) -> list:
    """`runs` runs of `nodestat <group>`, each line `<node>: <state>`."""
    ran = bench.repeat(runs, "nodestat", group, lines=count)
    for one in ran:
        wrong = [
            line for line in one.stdout.decode().splitlines() if not line.endswith(f": {state}")
        ]
        if wrong:
            raise BenchmarkFailure(f"nodestat {group}: expected {state}, got {wrong[:3]}")
    return ran


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--runs", type=int, default=RUNS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    sys.exit(0 if main(arguments.nodes, arguments.runs) else 1)
