"""The hierarchy at scale: one management node dispatching `nodeset` for
100,000 nodes across 100 service nodes.

The management node (MN) serves on 127.0.0.1; each service node is a real
xcatd in service-node mode with a root of its own, serving on its own
loopback address 127.0.1.<k> (the same port numbers as the MN, as in a real
cluster), with credentials the cluster CA signed for its key (what
enrollment gives; enrolling from its own address is what the tests prove).
The nodes are made with the real client (`mkdef -z`): sn001..sn100, and
cn000001..cn100000 (on 127.<10+k>.0.0/16), a thousand in each rack group,
whose `servicenode` and `xcatmaster` are its service node.  One osimage is packed by the real
packimage from a stand-in root image with an 8 MiB kernel and a 40 MiB
initrd.  Each figure is one whole run of the real `nodeset compute
osimage=...` on the MN, its 100,000 output lines counted:

- the start: every service node's daemon at once, as after a power outage,
  each taking the definitions of its nodes from the MN as it starts (its
  nodes have no state yet: none is set up); the time until all have said so;
- the first run: every service node copies the packed image (48 MiB) over
  HTTP from the MN, and writes its nodes' boot files (the definitions are
  as they took them at their start);
- the second: the image copies are current, the definitions are taken
  again, the boot files rewritten.

Target: each under 30 s end to end.  Printed beside it: the MN's CPU time
and peak VmRSS during the run, the MN's memory per service node (its
peak during the run above its size before, over the service nodes), and
the CPU time of the service nodes' daemons together.
(On this 2-core machine 100 service-node daemons share the cores with the
MN; on a real cluster each has its own machine.)

The service nodes' roots are made in memory (a tmpfs: /dev/shm), as a
stateless service node's root is — its image copies and boot files are
in its RAM, not on a disk whose journal a hundred of them share — and on
disk, said in the header, where there is no tmpfs.  The first run writes
100 copies of the image into that memory: the system CPU time printed
beside the service nodes' shows what that cost (a virtual machine whose
host backs its memory only as it is first touched writes new data into
memory many times slower than a real machine).

    .venv/bin/python -m bench.hierarchy [--service-nodes N] [--nodes-each M]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from xcat_client.credentials import Target

from tests.cluster import BIN, Cluster
from xcatd.ca import CertificateAuthority
from xcatd.config import Config
from xcatd.layout import Layout
from xcatd.servicenode.enroll import BootArguments, Enrolled, install
from xcatd.servicenode.restore import RESTORED

from .common import running_cluster
from .objects import (
    Bench,
    BenchmarkFailure,
    MemorySampler,
    command_figure,
    reported,
    status_kib,
    user_and_system_seconds,
)

SERVICE_NODES = 100
NODES_EACH = 1000
TARGET = 30.0  # seconds
IMAGE = "compute-img"
STATE = "netboot debian12-x86_64-compute"
START_TIMEOUT = 300
RAM = Path("/dev/shm")  # a tmpfs on Debian


def service_node_address(k: int) -> str:
    return f"127.0.1.{k}"


def write_stanzas(path: Path, service_nodes: int, each: int) -> None:
    with path.open("w") as out:
        out.write("# <xCAT data object stanza file>\n")
        for k in range(1, service_nodes + 1):
            out.write(f"\nsn{k:03d}:\n    objtype=node\n    groups=service\n"
                      f"    ip={service_node_address(k)}\n")  # fmt: skip
            out.write(f"\nrack{k:03d}:\n    objtype=group\n    servicenode=sn{k:03d}\n"
                      f"    xcatmaster={service_node_address(k)}\n")  # fmt: skip
        for i in range(service_nodes * each):
            k = i // each + 1
            out.write(
                f"\ncn{i + 1:06d}:\n    objtype=node\n    groups=compute,rack{k:03d}\n"
                f"    ip=127.{10 + k}.{i % each >> 8 & 255}.{i % each & 255}\n"
                f"    mac=52:54:{k:02x}:00:{i % each >> 8 & 255:02x}:{i % each & 255:02x}\n"
                "    netboot=xnba\n"
            )


def make_image(bench: Bench, cluster: Cluster) -> None:
    rootimgdir = cluster.root / "install/netboot/debian12/x86_64" / IMAGE
    (rootimgdir / "rootimg/etc").mkdir(parents=True)
    (rootimgdir / "rootimg/etc/hostname").write_text("node\n")
    (rootimgdir / "kernel").write_bytes(b"k" * (8 << 20))
    (rootimgdir / "initrd-stateless.gz").write_bytes(b"i" * (40 << 20))
    bench.run("mkdef", "-t", "osimage", "-o", IMAGE, "provmethod=netboot", "osvers=debian12",
              "osarch=x86_64", "profile=compute", f"rootimgdir={rootimgdir}")  # fmt: skip
    bench.run("packimage", "-c", "zstd", IMAGE)


def service_node(mn: Cluster, ca: CertificateAuthority, workdir: Path, k: int) -> Cluster:
    """The root of service node k, with what its enrollment would give it."""
    name, address = f"sn{k:03d}", service_node_address(k)
    sn = Cluster(workdir / name, hostname=name, address=address)
    for port in ("port", "http_port", "tftp_port", "status_port"):
        setattr(sn, port, getattr(mn, port))
    config = Config("", role="servicenode", listen=(address,), port=mn.port,
                    http_port=mn.http_port, tftp_port=mn.tftp_port, status_port=mn.status_port,
                    serve_dhcp=False)  # fmt: skip
    layout = Layout.for_root(sn.root)
    layout.etc.mkdir(parents=True)
    layout.config_file.write_text(config.dump())
    key = ed25519.Ed25519PrivateKey.generate()
    cert = ca.sign(key.public_key(), name, "servicenode", dns_names=(name,),
                   ip_addresses=(address,))  # fmt: skip
    boot = BootArguments(Target("127.0.0.1", mn.port), b"", name)
    install(layout, boot, Enrolled(cert, ca.cert, key, "", ""))
    return sn


@contextlib.contextmanager
def service_node_roots() -> Iterator[tuple[Path, str]]:
    """A directory for the service nodes' roots, in memory where a tmpfs is
    at RAM, else on disk; and which of the two, as the header says it."""
    in_ram = _is_tmpfs(RAM)
    with tempfile.TemporaryDirectory(prefix="xcatd-bench-sn-", dir=RAM if in_ram else None) as tmp:
        yield Path(tmp), "in memory (tmpfs)" if in_ram else f"on disk ({RAM} is not a tmpfs)"


def _is_tmpfs(directory: Path) -> bool:
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1:3] == [str(directory), "tmpfs"] for line in mounts)


def start_all(service_nodes: list[Cluster]) -> float:
    """Every service node's daemon at once; back when all serve and have
    taken the definitions at their start (servicenode/restore.py): how long
    that took."""
    began = time.monotonic()
    for sn in service_nodes:
        sn.process = subprocess.Popen(
            [BIN / "xcatd", "serve", "--root", str(sn.root)],
            stdout=subprocess.DEVNULL,
            stderr=sn.log.open("ab"),
            env=sn.env,
        )
    deadline = time.monotonic() + START_TIMEOUT
    waiting = list(service_nodes)
    while waiting:
        if time.monotonic() > deadline:
            raise BenchmarkFailure(f"{len(waiting)} service nodes did not start")
        for sn in list(waiting):
            assert sn.process is not None
            if sn.process.poll() is not None:
                raise BenchmarkFailure(f"{sn.hostname} exited:\n{sn.logs()[-2000:]}")
            if RESTORED in sn.logs():
                waiting.remove(sn)
        time.sleep(0.2)
    return time.monotonic() - began


def service_nodes_cpu(service_nodes: list[Cluster]) -> tuple[float, float]:
    """The CPU time the service nodes' daemons have used, together: user
    and system (the kernel's, where writing new data into memory shows)."""
    times = [user_and_system_seconds(sn.process.pid) for sn in service_nodes if sn.process]
    return sum(user for user, _ in times), sum(system for _, system in times)


def main(service_nodes: int = SERVICE_NODES, each: int = NODES_EACH) -> bool:
    return reported(lambda: _measure(service_nodes, each))


def _measure(service_nodes: int, each: int) -> bool:
    with running_cluster() as mn, service_node_roots() as (roots, where):
        assert mn.process is not None
        sampler = MemorySampler(mn.process.pid)
        sampler.start()
        started: list[Cluster] = []
        try:
            bench = Bench(mn, sampler)
            workdir = mn.root.parent
            stanzas = workdir / "nodes.stanza"
            write_stanzas(stanzas, service_nodes, each)
            bench.run("mkdef", "-z", stdin=stanzas)
            bench.run("chdef", "-t", "site", f"httpport={mn.http_port}", "dhcpsetup=n")
            make_image(bench, mn)
            ca = CertificateAuthority(mn.root / "etc/xcat/pki")
            started = [service_node(mn, ca, roots, k) for k in range(1, service_nodes + 1)]
            took = start_all(started)
            total = service_nodes * each
            print(f"{total:,} nodes across {service_nodes} service nodes "
                  f"({each:,} each), dispatched from one MN", flush=True)  # fmt: skip
            print(f"    the service nodes' roots {where}", flush=True)
            print(f"    {service_nodes} service nodes started at once, each with its "
                  f"nodes' definitions: {took:.1f} s", flush=True)  # fmt: skip
            ok = True
            for label in ("images copied", "images current"):
                before = status_kib(mn.process.pid, "VmRSS")
                user_before, system_before = service_nodes_cpu(started)
                ran = bench.run("nodeset", "compute", f"osimage={IMAGE}")
                user, system = service_nodes_cpu(started)
                user, system = user - user_before, system - system_before
                lines = ran.stdout.decode().splitlines()
                if len(lines) != total or any(not line.endswith(STATE) for line in lines):
                    raise BenchmarkFailure(f"nodeset printed {len(lines)} lines: {lines[:3]}")
                ok &= command_figure(f"nodeset via SNs ({label})", [ran], TARGET)
                per_sn = max(0.0, ran.daemon_peak_mib - before / 1024) / service_nodes
                print(f"    MN memory per service node during the run: {per_sn * 1024:.0f} KiB")
                print(
                    f"    service nodes' CPU, all {service_nodes} together: "
                    f"{user + system:.1f} s (system {system:.1f} s)"
                )
        finally:
            for sn in started:
                if sn.process is not None:
                    sn.stop()
            sampler.stop()
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.hierarchy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--service-nodes", type=int, default=SERVICE_NODES)
    parser.add_argument("--nodes-each", type=int, default=NODES_EACH)
    options = parser.parse_args()
    sys.exit(0 if main(options.service_nodes, options.nodes_each) else 1)
