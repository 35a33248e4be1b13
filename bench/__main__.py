"""Run every benchmark: `.venv/bin/python -m bench` from the repository root.

Each prints its figures beside their targets; the exit status is 1 when any
target is missed.  (Benchmarks are not tests: pytest never collects them.)
"""

from __future__ import annotations

import sys

from . import (
    bootstorm,
    client_startup,
    consoles,
    defs_single,
    hierarchy,
    http,
    nodeset,
    nodestat,
    objects,
    packimage,
    power,
    requests,
    tftp,
)

if __name__ == "__main__":
    results = [
        client_startup.main(),
        requests.main(),
        objects.main(),
        defs_single.main(),
        packimage.main(),
        nodeset.main(),
        http.main(),
        tftp.main(),
        bootstorm.main(),
        power.main(),
        consoles.main(),
        nodestat.main(),
        hierarchy.main(),
    ]
    sys.exit(0 if all(results) else 1)
