"""Client start-up: what every command pays before it sends anything.

Measured:

- the imports of the client entry point, `python -X importtime -c "import
  xcat_client.main"`: the median over RUNS runs of the sum of the top-level
  cumulative import times, leaving out the `site` line (the interpreter's own
  start-up, which in this checkout also holds the editable install's import
  hook).  Target: under 30 ms.
- the same without the editable install, for comparison: its hook imports
  `re`, `enum`, `collections`, `pathlib`... inside `site`, and those then cost
  the client nothing above.  Here `-S` skips `site` and the packages are found
  through PYTHONPATH, as a regular install finds them; `os`, which `site`
  always imports, is left out as well.
- one `lsxcatd -v` as a whole process, start to exit, run as the real console
  script against a running daemon: the median (target: under 80 ms) and p90.

Why: every xCAT command is a new process, and scripts run them in loops over
thousands of nodes, so start-up is what an administrator feels.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from tests.cluster import BIN, Cluster

from .common import percentile, report, running_cluster

REPO = Path(__file__).resolve().parent.parent
IMPORT = "import xcat_client.main"
IMPORT_RUNS = 15
PROCESS_RUNS = 30
PROCESS_WARMUP = 3


def top_level_imports(command: list[str], env: dict[str, str] | None = None) -> dict[str, int]:
    """The cumulative microseconds of each top-level import that -X importtime reports."""
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{result.stderr}")
    imports: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if line.startswith("import time:"):
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):
                imports[name.strip()] = imports.get(name.strip(), 0) + int(cumulative)
    return imports


def import_ms(command: list[str], env: dict[str, str] | None = None) -> float:
    """Median over IMPORT_RUNS of the top-level import times, `site` (and `os`) left out."""
    runs = []
    for _ in range(IMPORT_RUNS):
        imports = top_level_imports(command, env)
        runs.append(sum(us for name, us in imports.items() if name not in ("site", "os")) / 1000)
    return statistics.median(runs)


def regular_install_import_ms() -> float:
    """The client's imports found through PYTHONPATH, with no editable-install hook."""
    with tempfile.TemporaryDirectory(prefix="xcat-client-") as tmp:
        os.symlink(REPO / "client", Path(tmp) / "xcat_client")
        os.symlink(REPO / "protocol", Path(tmp) / "xcat_protocol")
        path = [tmp, sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(path))}
        command = [sys.executable, "-S", "-X", "importtime", "-c", f"import os; {IMPORT}"]
        return import_ms(command, env)


def lsxcatd_seconds(cluster: Cluster) -> list[float]:
    """Wall time of each whole `lsxcatd -v` process, after a few unmeasured runs."""
    times = []
    for _ in range(PROCESS_WARMUP + PROCESS_RUNS):
        start = time.perf_counter()
        result = subprocess.run(
            [BIN / "lsxcatd", "-v"],
            # Not a pipe: the client reads a piped stdin as the request's input.
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=cluster.env,
            timeout=30,
        )
        times.append(time.perf_counter() - start)
        if result.returncode != 0 or not result.stdout.startswith("Version "):
            raise RuntimeError(f"lsxcatd -v failed ({result.returncode}):\n{result.stderr}")
    return times[PROCESS_WARMUP:]


def main() -> bool:
    imports = import_ms([sys.executable, "-X", "importtime", "-c", IMPORT])
    ok = report("client imports", imports, "ms", "< 30 ms", imports < 30)
    report("  same, regular install", regular_install_import_ms(), "ms")
    with running_cluster() as cluster:
        times = [t * 1000 for t in lsxcatd_seconds(cluster)]
    median = statistics.median(times)
    ok &= report("lsxcatd -v process, median", median, "ms", "< 80 ms", median < 80)
    report("lsxcatd -v process, p90", percentile(times, 90), "ms")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
