"""What every benchmark shares: a real daemon to measure, percentiles, and
one line per figure printed beside its target."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cluster import Cluster


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A cluster initialised in a temporary directory, its daemon serving on loopback."""
    with tempfile.TemporaryDirectory(prefix="xcatd-bench-") as tmp:
        cluster = Cluster(Path(tmp) / "cluster")
        result = cluster.init()
        if result.returncode != 0:
            raise RuntimeError(f"xcatd init failed:\n{result.stderr}")
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with p % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def report(label: str, value: float, unit: str, target: str = "", ok: bool | None = None) -> bool:
    """Print `label  value unit  (target ...)  ok|MISSED`; returns False only when missed.
    A whole number (an int) is printed without decimals."""
    shown = f"{value:>9d}" if isinstance(value, int) else f"{value:>9.1f}"
    line = f"{label:<30}{shown} {unit:<6}"
    if target:
        line += f"(target {target})  {'ok' if ok else 'MISSED'}"
    print(line.rstrip(), flush=True)
    return ok is not False
