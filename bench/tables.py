"""tabdump at scale: `tabdump nodelist` of 100,000 nodes, under 3 s.

The data set is bench.objects' (100,000 nodes in 50 racks, ~12 attributes
each, loaded by `mkdef -z`); each figure is one whole run of the real
`tabdump` console script against a real daemon, its output piped back and
checked (header plus one line per node).  Beside it, for comparison,
`tabdump hosts` (a table that is not the nodes' main one: each node's row is
made from two attributes) and the same `tabdump nodelist` on an empty store.

    .venv/bin/python -m bench.tables [--nodes N] [--runs N]
"""

from __future__ import annotations

import argparse

from .objects import NODES, RUNS, benched, command_figure, reported, write_stanzas

TARGET = 3.0  # seconds, tabdump nodelist of 100,000 nodes


def main(count: int = NODES, runs: int = RUNS) -> bool:
    """The figures beside their target; False when it is missed or a command fails."""
    return reported(lambda: _measure(count, runs))


def _measure(count: int, runs: int) -> bool:
    with benched() as bench:
        cluster = bench.cluster
        command_figure("tabdump nodelist, empty", bench.repeat(runs, "tabdump", "nodelist",
                                                               lines=1))  # fmt: skip
        stanzas = cluster.root.parent / "nodes.stanza"
        write_stanzas(stanzas, count)
        bench.run("mkdef", "-z", stdin=stanzas)
        done = bench.repeat(runs, "tabdump", "nodelist", lines=count + 1)
        ok = command_figure(f"tabdump nodelist, {count:,}", done, TARGET)
        command_figure(
            f"tabdump hosts, {count:,}", bench.repeat(runs, "tabdump", "hosts", lines=count + 1)
        )
    return ok


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--runs", type=int, default=RUNS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    raise SystemExit(0 if main(arguments.nodes, arguments.runs) else 1)
