"""Single-object commands at 100,000 nodes: each under 60 ms, whole command.

`lsdef -t node -o node050000`, `chdef -t node -o node050000 status=...`
and `nodels node050000` must cost what one node costs, not what the cluster
does.  Each figure is the median of whole runs of the real console script
against a real daemon (output piped back and checked), printed beside its
target and beside the same command on a store that holds only that node;
`lsxcatd -v` on the same daemon is printed too: the floor that any command
pays (client start, TLS, signing).  The data set is bench.objects' (100,000
nodes in 50 racks, ~12 attributes each, loaded by `mkdef -z`).

    .venv/bin/python -m bench.defs_single [--nodes N] [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import time
from pathlib import Path

from tests.cluster import Cluster
from xcatd.layout import Layout

from .objects import (
    NODES,
    Bench,
    BenchmarkFailure,
    Ran,
    benched,
    figure,
    node_name,
    reported,
    write_stanzas,
)

TARGET = 0.060  # seconds, whole command, median
RUNS = 11
CHANGED = b"1 object definitions have been created or modified.\n"


def main(count: int = NODES, runs: int = RUNS) -> bool:
    """The figures beside their targets; False when one is missed or a command fails."""
    return reported(lambda: _measure(count, runs))


def _measure(count: int, runs: int) -> bool:
    node = node_name(count // 2)
    with benched() as bench:
        cluster = bench.cluster
        stanzas = cluster.root.parent / "nodes.stanza"
        write_stanzas(stanzas, count)
        one = cluster.root.parent / "one.stanza"
        one.write_text(_stanza_of(stanzas, node))
        bench.run("mkdef", "-z", stdin=one)
        alone, alone_daemon = _phase(bench, cluster, node, runs)
        bench.run("rmdef", node)
        bench.run("mkdef", "-z", stdin=stanzas)
        full, full_daemon = _phase(bench, cluster, node, runs)
    ok = True
    for label, runs_of in full.items():
        target = None if label.startswith("lsxcatd") else TARGET
        command = label.split()[0]
        beside = (
            f"with only that node: {statistics.median(r.seconds for r in alone[label]) * 1000:.1f}"
            f" ms; in the daemon (audit duration): {statistics.median(full_daemon[command]):.1f}"
            f" ms, with only that node {statistics.median(alone_daemon[command]):.1f} ms"
        )
        ok &= figure(f"{label}, {count:,}", [r.seconds for r in runs_of], target, beside)
    return ok


def _phase(
    bench: Bench, cluster: Cluster, node: str, runs: int
) -> tuple[dict[str, list[Ran]], dict[str, list[float]]]:
    """The commands' whole runs, and the time each request took in the
    daemon (its audit record's duration), by command: a figure the load of
    other work on the machine disturbs less than a whole client process."""
    before = _audit(cluster, "select ifnull(max(id), 0) from audit")[0][0]
    timed = _timings(bench, node, runs)
    time.sleep(0.5)  # the daemon writes its audit records a moment after the reply
    durations: dict[str, list[float]] = {}
    query = "select command, duration_ms from audit where id > ? order by id"
    for command, duration in _audit(cluster, query, before):
        durations.setdefault(command, []).append(duration)
    return timed, durations


def _audit(cluster: Cluster, query: str, *parameters: object) -> list[tuple]:
    """Rows of the daemon's audit table (its database read beside it)."""
    path = Layout.for_root(cluster.root).database
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(query, parameters).fetchall()


def _timings(bench: Bench, node: str, runs: int) -> dict[str, list[Ran]]:
    """Each command's whole runs, their output checked."""
    times: dict[str, list[Ran]] = {}

    def timed(label: str, *command: str, starts: bytes) -> None:
        ran = bench.run(*command)
        if not ran.stdout.startswith(starts):
            raise BenchmarkFailure(f"{' '.join(command)} printed {ran.stdout[:200]!r}")
        times.setdefault(label, []).append(ran)

    for run in range(runs):
        timed("lsxcatd -v", "lsxcatd", "-v", starts=b"Version")
        timed(
            "lsdef one node",
            "lsdef",
            "-t",
            "node",
            "-o",
            node,
            starts=b"Object name: " + node.encode(),
        )
        status = "booted" if run % 2 else "netbooting"  # every run changes what is stored
        timed(
            "chdef one node", "chdef", "-t", "node", "-o", node, f"status={status}", starts=CHANGED
        )
        timed("nodels one node", "nodels", node, starts=node.encode() + b"\n")
    return times


def _stanza_of(stanzas: Path, node: str) -> str:
    """The stanza file's header and `node`'s stanza alone."""
    text = stanzas.read_text()
    start = text.index(f"\n{node}:\n")
    end = text.find("\n\n", start + 1)
    return text[: text.index("\n") + 1] + text[start : end if end >= 0 else None] + "\n"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--runs", type=int, default=RUNS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    raise SystemExit(0 if main(arguments.nodes, arguments.runs) else 1)
