"""nodeset at scale: 10,000 iPXE nodes set to boot a packed osimage.

The nodes are made with the real client (`mkdef -z` of a stanza file, as
bench/objects.py does): node00001..node10000 in `all` and one of 20 racks,
each with its own MAC and IP (on 127.0.0.0/8, so that "this server's
address facing the node" is found by the real routing lookup), netboot=xnba,
and a serial console.  Two osimages are packed by the real packimage from a
one-file root image with a stand-in kernel and initrd.  Each figure is one
whole run of the real `nodeset` against a real daemon, its 10,000 output
lines going to a pipe and counted, with the DHCP entries (makedhcp) written
too, as by default:

- `nodeset all osimage=<a>` on nodes that have no boot files yet;
- the same again: every file already holds what would be written;
- `nodeset all osimage=<b>`: every node's files and definition change.

Target: each under 3 s (xCAT: 2,500 nodes in 4 min 29 s).  Each run is
followed by the daemon's CPU time and peak VmRSS during it; `nodeset all
boot` is printed without a target.

    .venv/bin/python -m bench.nodeset [--nodes N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.cluster import Cluster

from .objects import Bench, BenchmarkFailure, benched, command_figure, reported

NODES = 10_000
RACKS = 20
TARGET = 3.0  # seconds


def write_stanzas(path: Path, count: int) -> None:
    per_rack = -(-count // RACKS)
    with path.open("w") as out:
        out.write("# <xCAT data object stanza file>\n")
        for i in range(1, count + 1):
            out.write(
                f"\nnode{i:05d}:\n    objtype=node\n"
                f"    groups=all,rack{(i - 1) // per_rack + 1:02d}\n"
                f"    ip=127.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n"
                f"    mac=52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}\n"
                "    netboot=xnba\n    serialport=0\n    serialspeed=115200\n"
            )


def make_image(bench: Bench, cluster: Cluster, name: str) -> None:
    rootimgdir = cluster.root / "install/netboot/debian12/x86_64" / name
    (rootimgdir / "rootimg/etc").mkdir(parents=True)
    (rootimgdir / "rootimg/etc/hostname").write_text("node\n")
    (rootimgdir / "kernel").write_bytes(b"k" * (8 << 20))  # about a real kernel's size
    (rootimgdir / "initrd-stateless.gz").write_bytes(b"i" * (40 << 20))
    bench.run("mkdef", "-t", "osimage", "-o", name, "provmethod=netboot", "osvers=debian12",
              "osarch=x86_64", "profile=service", f"rootimgdir={rootimgdir}")  # fmt: skip
    bench.run("packimage", "-c", "zstd", name)


def set_nodes(bench: Bench, count: int, state: str, *args: str):
    ran = bench.run("nodeset", "all", *args)
    lines = ran.stdout.decode().splitlines()
    if len(lines) != count or lines[-1] != f"node{count:05d}: {state}":
        raise BenchmarkFailure(f"nodeset all {' '.join(args)} printed {lines[-1:]!r}...")
    return ran


def main(count: int = NODES) -> bool:
    return reported(lambda: _measure(count))


def _measure(count: int) -> bool:
    with benched() as bench:
        cluster = bench.cluster
        stanzas = cluster.root.parent / "nodes.stanza"
        write_stanzas(stanzas, count)
        bench.run("mkdef", "-z", stdin=stanzas)
        bench.run("mkdef", "-t", "network", "-o", "lo", "net=127.0.0.0", "mask=255.0.0.0")
        bench.run("makedhcp", "-n")
        make_image(bench, cluster, "svc-a")
        make_image(bench, cluster, "svc-b")
        print(f"{count:,} iPXE nodes, DHCP entries written too", flush=True)
        state = "netboot debian12-x86_64-service"
        ok = True
        for label, image in (("new files", "svc-a"), ("unchanged", "svc-a"),
                             ("another image", "svc-b")):  # fmt: skip
            ran = set_nodes(bench, count, state, f"osimage={image}")
            ok &= command_figure(f"nodeset osimage ({label})", [ran], TARGET)
        command_figure("nodeset boot", [set_nodes(bench, count, "boot", "boot")])
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.nodeset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nodes", type=int, default=NODES, help="nodes in the data set")
    sys.exit(0 if main(parser.parse_args().nodes) else 1)
